"""The local InternVL evaluator: a tiny random-init InternVL of the real classes saved to disk and
loaded back through the same loader (+ a PEFT LoRA adapter), and the evaluator presets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.models.base import ModelLoadError

pytestmark = pytest.mark.slow


def build_tiny_lora(
    base_dir: str | Path, out_dir: str | Path, rank: int = 4, seed: int = 0
) -> Path:
    """A random (non-zero) LoRA adapter on the tiny model's language attention q/v projections,
    saved with PEFT to ``out_dir`` (``adapter_config.json`` + weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import InternVLForConditionalGeneration

    torch.manual_seed(seed)
    base = InternVLForConditionalGeneration.from_pretrained(base_dir, local_files_only=True)
    cfg = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        init_lora_weights=False,
        target_modules=r".*language_model.*\.(q_proj|v_proj)",
    )
    lora = get_peft_model(base, cfg)
    lora.save_pretrained(out_dir)
    return Path(out_dir)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    from core.evaluator.tiny import build_tiny_internvl

    root = tmp_path_factory.mktemp("ivl")
    base = build_tiny_internvl(root / "base")
    lora = build_tiny_lora(base, root / "lora")
    return base, lora


@pytest.fixture(scope="module")
def lora_evaluator(tiny_dirs):
    from core.evaluator.local_internvl import load_internvl

    base, lora = tiny_dirs
    return load_internvl(base, lora_path=lora, is_random=True, max_new_tokens=6)


def _image_and_masks(hw=(30, 40)):
    img = np.zeros((*hw, 3), np.uint8)
    img[5:20, 5:25] = (200, 30, 30)
    m = np.zeros(hw, bool)
    m[5:20, 5:25] = True
    return img, m


def test_round_trip_with_lora_gives_group_results(lora_evaluator):
    ev = lora_evaluator
    assert ev.is_random and ev.backend == "local-internvl" and ev.name == "internvl:base+lora:lora"
    img, m = _image_and_masks()
    res = ev.score_groups(img, "which cube ?", [[m, ~m, m], [m]], cot=True)
    assert [len(r.scores) for r in res] == [3, 1]
    for r in res:  # random words: a recorded parse failure, never a crash or a made-up score
        assert r.raw_text.strip() and r.scores == [None] * len(r.scores)
        assert r.parse_error and "no scores found" in r.parse_error
        assert r.seconds > 0
    assert res[0].prompt.count("<IMG_CONTEXT>") == 4 and "Mask 1 to Mask 3" in res[0].prompt
    assert "Image-4: <IMG_CONTEXT>" in res[0].prompt and "Answer:" in res[0].prompt
    one = ev.score_group(img, "which cube ?", [m], cot=True)
    assert one.raw_text == res[1].raw_text  # the same group alone gives the same greedy text


def test_batched_generate_equals_one_call_per_group(lora_evaluator):
    ev = lora_evaluator
    img, m = _image_and_masks()
    groups = [[m, ~m], [~m], [m, m & False, ~m]]
    ev.batch_groups = True
    batched = [r.raw_text for r in ev.score_groups(img, "left one ?", groups, cot=False)]
    ev.batch_groups = False
    try:
        single = [r.raw_text for r in ev.score_groups(img, "left one ?", groups, cot=False)]
    finally:
        ev.batch_groups = True
    assert batched == single


def test_image_tokens_are_bounded(lora_evaluator, tiny_dirs):
    from core.evaluator.inputs import image_kwargs
    from core.evaluator.tiny import IMAGE_SEQ_LENGTH

    ev = lora_evaluator
    img, m = _image_and_masks((300, 500))
    text = ev.prompt_text("q", 2, False)
    # InternVL's multi-image recipe: the group's 3 images share 12 tiles, 4 each at most
    assert ev.max_patches == 12 and "12 tiles per group" in ev.image_tiling
    inputs = ev.processor(
        text=[text], images=[img, img, img], return_tensors="pt", **image_kwargs(3, 12)
    )
    assert 3 < inputs["pixel_values"].shape[0] <= 3 * (4 + 1)  # + a thumbnail each
    inputs = ev.processor(
        text=[text], images=[img, img, img], return_tensors="pt", **image_kwargs(3, 3)
    )
    n_ctx = int((inputs["input_ids"] == ev.model.config.image_token_id).sum())
    assert (
        n_ctx == 3 * IMAGE_SEQ_LENGTH and inputs["pixel_values"].shape[0] == 3
    )  # one tile each when the budget allows no more


def test_the_adapter_changes_the_model(tiny_dirs, lora_evaluator):
    import torch

    from core.evaluator.local_internvl import load_internvl

    base = load_internvl(tiny_dirs[0], is_random=True)
    ids = torch.tensor([[1, 5, 6, 7, 2]])
    with torch.inference_mode():
        a = base.model(input_ids=ids).logits
        b = lora_evaluator.model(input_ids=ids).logits
    assert not torch.allclose(a, b)
    cfg = json.loads((tiny_dirs[1] / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["peft_type"] == "LORA"


def test_stage2_with_the_tiny_evaluator(lora_evaluator):
    from core.evaluator.stage2 import run_stage2
    from core.trace import Candidate, PipelineTrace

    img, m = _image_and_masks()
    masks = [m, ~m, m & False, m.copy(), ~m & False, m | True]
    tr = PipelineTrace(
        "which ?",
        m.shape,
        "tiny",
        {},
        True,
        {},
        None,
        m,
        None,
        None,
        None,
        [Candidate(i, "amg", i, x, 0.5) for i, x in enumerate(masks)],
    )
    ev = run_stage2(tr, img, lora_evaluator, group_size=5, shuffle_seed=3, cot=False)
    assert (
        ev.is_random
        and ev.backend == "local-internvl"
        and len(ev.groups) == 2
        and ev.groups[1].padded == 4
    )
    assert all(g.parse_error for g in ev.groups) and all(
        v is None for v in ev.final_scores.values()
    )
    assert ev.ranking == [0, 1, 2, 3, 4, 5]  # nothing readable: stage-1 order, never a made-up 0


def test_loader_errors_name_the_file_and_setting(tmp_path, tiny_dirs):
    from core.evaluator.local_internvl import load_internvl

    with pytest.raises(ModelLoadError, match=r"missing.*setting model_path"):
        load_internvl(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="no InternVL checkpoint directory is set"):
        load_internvl("")
    (tmp_path / "lora_bad").mkdir()
    with pytest.raises(ModelLoadError, match=r"lora_bad.*adapter_config.json.*setting my\.lora"):
        load_internvl(tiny_dirs[0], lora_path=tmp_path / "lora_bad", lora_setting="my.lora")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="broken"):
        load_internvl(tmp_path / "broken")
    with pytest.raises(ModelLoadError, match="dtype"):
        load_internvl(tiny_dirs[0], dtype="int3")


def test_presets(tmp_path, tiny_dirs, monkeypatch):
    from core.evaluator.local_internvl import InternVLEvaluator
    from core.evaluator.presets import load_evaluator

    monkeypatch.setenv("REA2SEG_CONFIG", str(tmp_path / "config.toml"))
    with pytest.raises(
        ModelLoadError, match=r"evaluator\.internvl3-8b\.model_path in .*config\.toml"
    ):
        load_evaluator("internvl3-8b", config={})
    cfg = {
        "evaluator": {"internvl3-8b": {"model_path": str(tmp_path / "nowhere"), "device": "cpu"}}
    }
    with pytest.raises(ModelLoadError, match=r"nowhere.*evaluator\.internvl3-8b\.model_path"):
        load_evaluator("internvl3-8b", config=cfg)
    cfg = {
        "evaluator": {
            "internvl3-8b": {
                "model_path": str(tiny_dirs[0]),
                "lora_path": str(tiny_dirs[1]),
                "max_new_tokens": 3,
                "max_batch": 2,
            }
        }
    }
    ev = load_evaluator("internvl3-8b", config=cfg)
    assert (
        isinstance(ev, InternVLEvaluator)
        and "lora" in ev.name
        and ev.max_batch == 2
        and not ev.is_random
    )
    assert isinstance(load_evaluator(str(tiny_dirs[0]), config={}), InternVLEvaluator)
    spec = load_evaluator({"backend": "local", "model_path": str(tiny_dirs[0]), "is_random": True})
    assert spec.is_random
    with pytest.raises(ModelLoadError, match="unknown evaluator preset"):
        load_evaluator("gpt-9", config={})


def test_tiny_random_preset_builds_once_and_is_labelled_random(monkeypatch, tmp_path):
    from core.evaluator.presets import load_evaluator, tiny_internvl_dir

    monkeypatch.setenv("REA2SEG_HOME", str(tmp_path / "home"))
    ev = load_evaluator("tiny-random", config={})
    assert ev.is_random and ev.max_new_tokens == 24
    d = tiny_internvl_dir()
    stamp = (d / "config.json").stat().st_mtime_ns
    assert load_evaluator("tiny-random", config={}).is_random
    assert (d / "config.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not list(d.parent.glob("*.tmp-*"))


def test_a_declared_prompt_format_is_enforced(tiny_dirs):
    from core.evaluator.adapter import PromptFormatError
    from core.evaluator.local_internvl import load_internvl
    from core.evaluator.prompt import prompt_format
    from core.evaluator.stage2 import run_stage2
    from core.trace import Candidate, PipelineTrace

    nocot = prompt_format(False)
    ev = load_internvl(tiny_dirs[0], is_random=True, prompt_format=nocot, max_new_tokens=2)
    with pytest.raises(PromptFormatError, match="version 1"):  # the old export's prompt
        load_internvl(tiny_dirs[0], is_random=True, prompt_format="rea2seg-v1-nocot")
    with pytest.raises(PromptFormatError, match="without chain of thought"):
        load_internvl(tiny_dirs[0], is_random=True, prompt_format=nocot, cot=True)
    with pytest.raises(PromptFormatError, match="set max_patches = 12"):
        load_internvl(tiny_dirs[0], is_random=True, prompt_format=nocot, max_patches=6)
    m = np.zeros((20, 30), bool)
    m[:5] = True
    tr = PipelineTrace(
        "q",
        (20, 30),
        "t",
        {},
        True,
        {},
        None,
        None,
        None,
        None,
        None,
        [Candidate(0, "amg", 0, m, 0.5)],
    )
    with pytest.raises(ValueError, match=f"trained on prompt format {nocot}"):
        run_stage2(tr, np.zeros((20, 30, 3), np.uint8), ev, cot=True)
    assert run_stage2(tr, np.zeros((20, 30, 3), np.uint8), ev, cot=False).prompt_format == nocot


def test_training_and_inference_encode_through_one_builder(lora_evaluator, tiny_dirs):
    """A trainer's example is the inference prompt plus the answer: same tokens up to the
    generation prompt, same pixel tiles; the adapter directory declares the format."""
    from core.evaluator.adapter import read_adapter_declaration, write_adapter_declaration
    from core.evaluator.inputs import build_evaluator_input, chat_text, encode_inputs
    from core.evaluator.local_internvl import load_internvl

    ev = lora_evaluator
    img, m = _image_and_masks((60, 90))
    masks = [m, ~m]
    inf = ev.inputs(img, "the left one", masks, cot=True)
    train = build_evaluator_input(
        img, "the left one", masks, cot=True, scores=[0.9, 0.1], reasoning="It is on the left."
    )
    a = encode_inputs(ev.processor, [inf])
    b = encode_inputs(ev.processor, [train])
    n = a["input_ids"].shape[1]
    assert b["input_ids"].shape[1] > n
    assert (b["input_ids"][0, :n] == a["input_ids"][0]).all()  # the prompt is a prefix
    assert (a["pixel_values"] == b["pixel_values"]).all()  # the same tiles
    tail = ev.processor.tokenizer.decode(b["input_ids"][0, n:])  # word-level: digits as <unk>
    assert "Answer:" in tail and tail.count("Mask") == 2
    # the backend's prompt is this builder's chat text
    assert chat_text(ev.processor, inf) == ev.prompt_text("the left one", 2, True)
    write_adapter_declaration(tiny_dirs[1], inf.prompt_format, trained_on="t.jsonl")
    assert read_adapter_declaration(tiny_dirs[1]) == inf.prompt_format
    ok = load_internvl(tiny_dirs[0], lora_path=tiny_dirs[1], is_random=True, cot=True)
    assert ok.prompt_format == inf.prompt_format
    with pytest.raises(ModelLoadError, match="without chain of thought|with chain of thought"):
        load_internvl(tiny_dirs[0], lora_path=tiny_dirs[1], is_random=True, cot=False)
    (Path(tiny_dirs[1]) / "rea2seg_adapter.json").unlink()
