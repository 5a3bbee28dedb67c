"""``rea2seg train generator`` on tiny real architectures: the sequence it trains on is the one
the LISA loader runs, a fixed batch is learned, the saved model loads as a segmenter preset and
runs stage 1, ``--resume`` continues, and the grounding stage trains a model made from scratch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from core.training.splits import prepare_training_split

    d = tmp_path_factory.mktemp("split")
    prepare_training_split(d, 8, size_wh=(128, 96))
    return d


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from core.models.tiny_mllm import build_tiny_lisa

    return build_tiny_lisa(tmp_path_factory.mktemp("tiny") / "lisa")


def _tiny(**kw):
    from core.training.generator_settings import GeneratorSettings

    args = dict(batch_size=2, grad_accum=1, max_steps=2, warmup_steps=0, logging_steps=1)
    return GeneratorSettings(**{**args, **kw})


def test_training_sequence_is_the_one_the_loader_runs(base, split):
    from core.models.lisa import load_lisa
    from core.training.generator import GeneratorDataset, build_generator
    from core.training.generator_data import SceneBank, make_sample, parse_mix

    model, processor, options, _ = build_generator(base, _tiny())
    bank = SceneBank(split)
    data = GeneratorDataset(bank, processor, options, parse_mix("0:1:0:0"), 0, 4, 256)
    s = make_sample(bank, 0, parse_mix("0:1:0:0"), 0, options.answer_template)
    item = data.encode(s.image, s.question, s.answer, s.mask)
    lisa = load_lisa(base, is_random=True, max_new_tokens=0)
    # the loader words the question itself: hand it the raw referring phrase
    phrase = s.question[len("What is ") : -len(" in this image? Please output segmentation mask.")]
    sp = lisa.prepare(s.image, phrase, is_sentence=False)
    ids, fed = item["input_ids"].tolist(), sp.kwargs["input_ids"][0].tolist()
    # the loader stops at [SEG]; training goes on to the end of the answer and EOS (causal
    # attention: every position up to [SEG] sees the same prefix)
    assert ids[: len(fed)] == fed and len(ids) > len(fed)
    assert torch.equal(item["pixel_values"], sp.kwargs["pixel_values"][0])
    # only the answer is supervised, and the [SEG] embedding is read where the loader reads it
    labels = item["labels"].tolist()
    assert all(v == -100 for v in labels[: sp.prompt_len]) and -100 not in labels[sp.prompt_len :]
    assert int(model.seg_positions(item["input_ids"][None])[0]) == sp.query_index


def test_a_fixed_batch_is_learned_with_sam_and_vision_frozen(base, split):
    from core.training.generator import GeneratorCollator, GeneratorDataset, build_generator
    from core.training.generator_data import SceneBank, parse_mix

    torch.manual_seed(0)
    model, processor, options, _ = build_generator(base, _tiny(lora_r=8, lr=3e-3))
    frozen = {k: v.clone() for k, v in model.sam.state_dict().items()}
    data = GeneratorDataset(SceneBank(split), processor, options, parse_mix("1:1:1:1"), 3, 4, 256)
    batch = GeneratorCollator(processor.tokenizer.pad_token_id)([data[i] for i in range(4)])
    assert batch["has_mask"].any()
    trainable = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in names) and any(n.startswith("fcs.") for n in names)
    assert not any(n.startswith("sam.") or "vision_tower" in n for n in names)
    opt = torch.optim.AdamW(trainable, lr=3e-3)
    model.train()
    first = None
    for _ in range(12):
        out = model(**batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else {k: float(v.detach()) for k, v in out.items()}
    with torch.no_grad():
        last = {k: float(v) for k, v in model(**batch).items()}
    assert last["loss"] < 0.8 * first["loss"], (first, last)
    assert last["mask_bce_loss"] < first["mask_bce_loss"]
    assert all(torch.equal(frozen[k], v) for k, v in model.sam.state_dict().items())


def test_trained_model_loads_as_a_preset_and_runs_stage_1(base, split, tmp_path):
    from core.models.lisa import FCS_FILE, SAM_FILE
    from core.pipeline.cache import load_segmenter
    from core.pipeline.settings import run_defaults
    from core.pipeline.stage1 import run_stage1
    from core.training.common import read_loss_curve
    from core.training.generator import train_generator
    from core.training.generator_data import SceneBank

    out = tmp_path / "run"
    model_dir = train_generator(base, split, out, _tiny(save_steps=1), progress_bar=False)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    curve = read_loss_curve(out)
    assert [r["step"] for r in curve if "loss" in r] == [1, 2]
    assert {"text_loss", "mask_bce_loss", "mask_dice_loss"} <= set(curve[0])
    # SAM is frozen: the file is the base's; the connection module moved
    assert (model_dir / SAM_FILE).read_bytes() == (base / SAM_FILE).read_bytes()
    before, after = torch.load(base / FCS_FILE), torch.load(model_dir / FCS_FILE)
    assert not torch.equal(before["0.weight"], after["0.weight"])
    info = json.loads((model_dir / "training.json").read_text())
    assert info["steps"] == 2 and info["settings"]["mix"] == "" and info["split"]["seed"] >= 10**6

    seg = load_segmenter("lisa-7b", config={"presets": {"lisa-7b": {"mllm_path": str(model_dir)}}})
    _, img, _ = SceneBank(split).get(0)
    trace = run_stage1(
        seg.prompt_model,
        seg.sam,
        img,
        "Segment the cube.",
        run_defaults(seg.sam.kind, seg.is_random),
    )
    assert trace.initial_logits.shape == img.shape[:2] and trace.attention.grid_hw == (4, 4)
    assert len(trace.candidates) >= 3 and trace.model_ids["mllm"] == "lisa-7b"

    # --resume continues from checkpoint-2 to step 3, and the curve keeps one row per step
    train_generator(
        base, split, out, _tiny(max_steps=3, save_steps=1), resume=True, progress_bar=False
    )
    steps = [r["step"] for r in read_loss_curve(out) if "loss" in r]
    assert steps == [1, 2, 3]
    assert json.loads((model_dir / "training.json").read_text())["resumed_from"].endswith("-2")


def test_cli_grounding_from_scratch_then_lisa_stage(split, base, tmp_path, capsys):
    from core.cli import main
    from core.models.lisa import load_lisa

    common = [
        "--split",
        str(split),
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--max-steps",
        "1",
        "--warmup-steps",
        "0",
        "--device",
        "cpu",
    ]
    small = ["--scratch-width", "32", "--scratch-layers", "2", "--scratch-image-size", "28"]
    g = tmp_path / "g"
    assert (
        main(
            [
                "train",
                "generator",
                "--base",
                "scratch",
                "--stage",
                "grounding",
                "--out",
                str(g),
                *common,
                *small,
            ]
        )
        == 0
    )
    assert (g / "base" / "config.json").is_file() and (g / "model" / "config.json").is_file()
    curve = [json.loads(x) for x in (g / "loss_curve.jsonl").read_text().splitlines()]
    assert "text_loss" in curve[0] and "mask_bce_loss" not in curve[0]
    s = tmp_path / "s"
    assert (
        main(
            [
                "train",
                "generator",
                "--base",
                str(g / "model"),
                "--sam",
                str(base / "sam.pth"),
                "--out",
                str(s),
                *common,
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    lisa = load_lisa(s / "model")
    out = lisa.encode(np.zeros((96, 128, 3), np.uint8), "the red cube")
    assert out.prompt_embedding.shape == (1, 256) and out.grid_hw == (2, 2)
    # an evaluation seed is refused before anything trains
    assert (
        main(
            [
                "train",
                "generator",
                "--base",
                "scratch",
                "--out",
                str(tmp_path / "x"),
                "--scenes",
                "4",
                "--split-seed",
                "0",
            ]
        )
        == 2
    )


def test_bf16_and_activation_checkpointing_path(base, split, tmp_path):
    # the GPU path at tiny size on the CPU: frozen base held in bf16, what trains in float32,
    # activations recomputed; the merged result still loads in float32
    from core.models.lisa import load_lisa
    from core.training.generator import train_generator

    s = _tiny(max_steps=1, bf16=True, activation_checkpointing=True)
    model_dir = train_generator(base, split, tmp_path / "bf16", s, progress_bar=False)
    lisa = load_lisa(model_dir, is_random=True)
    assert next(lisa.model.parameters()).dtype == torch.float32
    out = lisa.encode(np.zeros((96, 128, 3), np.uint8), "the cube")
    assert np.isfinite(out.prompt_embedding).all()
