"""LISA-style adapter: tiny random LLaVA of the real classes through the real loader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from core.models.base import ModelLoadError

pytestmark = pytest.mark.slow

QUESTION = "which cube is left of the red sphere ?"


@pytest.fixture(scope="module")
def lisa_dir(tmp_path_factory):
    from core.models.tiny_mllm import build_tiny_lisa

    return build_tiny_lisa(tmp_path_factory.mktemp("lisa") / "files")


@pytest.fixture(scope="module")
def lisa(lisa_dir):
    from core.models.lisa import load_lisa

    return load_lisa(lisa_dir, is_random=True)


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)


def test_lean_rows_equal_eager_attention(lisa_dir, lisa, image):
    from transformers import LlavaForConditionalGeneration

    eager = LlavaForConditionalGeneration.from_pretrained(
        lisa_dir, local_files_only=True, attn_implementation="eager"
    ).eval()
    sp = lisa.prepare(image, QUESTION)
    with torch.inference_mode():
        ref = eager(**sp.kwargs, output_attentions=True).attentions
    out = lisa.encode(image, QUESTION, [0, 1, 2, 3])
    assert lisa.model.config._attn_implementation == "sdpa"
    for n in range(4):
        want = ref[n][0, :, sp.query_index, sp.image_positions].float().numpy()
        assert np.allclose(out.attention[n], want, atol=1e-5, rtol=0)
    assert out.attention.shape == (4, 4, 16) and out.grid_hw == (4, 4)
    assert np.all(out.attention.sum(-1) < 1 + 1e-6)


def test_embedding_is_the_projected_hidden_state_before_seg(lisa, image):
    sp = lisa.prepare(image, QUESTION)
    ids = sp.kwargs["input_ids"][0]
    assert (
        ids[sp.query_index + 1] == lisa.seg_id
        and lisa.seg_id not in ids[: sp.prompt_len + 1].tolist()
    )
    with torch.inference_mode():
        hs = lisa.model(**sp.kwargs, output_hidden_states=True).hidden_states[-1][0]
        want = lisa.fcs(hs[sp.query_index].float()[None]).numpy()
        at_seg = lisa.fcs(hs[sp.query_index + 1].float()[None]).numpy()
    out = lisa.encode(image, QUESTION, [3])
    assert np.allclose(out.prompt_embedding, want, atol=1e-5) and not np.allclose(
        out.prompt_embedding, at_seg
    )
    assert out.prompt_embedding.shape == (1, 256) and out.prompt_token == "[SEG]"
    assert out.extra["query_position"] == sp.query_index


def test_generated_seg_is_used_and_a_missing_one_is_forced(lisa_dir, image, monkeypatch):
    from core.models.lisa import load_lisa

    lisa = load_lisa(
        lisa_dir, is_random=True, max_new_tokens=32
    )  # generation on (LISA's chat, not its validation)
    tok = lisa.processor.tokenizer
    w = tok.convert_tokens_to_ids(["cube", "red", "ball"])
    prompt_len = lisa.prepare(image, QUESTION).prompt_len
    emitted = [w[0], lisa.image_token_id, w[1], lisa.seg_id, w[2], tok.eos_token_id]

    def fake_generate(input_ids, **kwargs):
        return torch.cat([input_ids, torch.tensor([emitted])], 1)

    monkeypatch.setattr(lisa.model, "generate", fake_generate)
    sp = lisa.prepare(image, QUESTION)
    assert sp.answer_ids == [w[0], w[1], lisa.seg_id] and not sp.extra["seg_forced"]
    assert sp.query_index == prompt_len + 1  # the hidden state of "red" predicts [SEG]
    out = lisa.encode(image, QUESTION, [1])
    assert "appended" not in out.generated_text and not out.extra["seg_forced"]

    emitted = [w[0], tok.eos_token_id]  # never emits [SEG]
    sp = lisa.prepare(image, QUESTION)
    template = tok(" [SEG].", add_special_tokens=False)["input_ids"]
    assert (
        sp.answer_ids == [w[0], *template[: template.index(lisa.seg_id) + 1]]
        and sp.extra["seg_forced"]
    )
    out = lisa.encode(image, QUESTION, [1])
    assert out.extra["seg_forced"] and "did not emit [SEG]" in out.generated_text


def test_round_trip_and_deterministic_build(lisa_dir, lisa, image, tmp_path):
    from core.models.lisa import load_lisa
    from core.models.tiny_mllm import build_tiny_lisa

    shutil.copytree(lisa_dir, tmp_path / "copy")
    again = load_lisa(tmp_path / "copy", is_random=True)
    a, b = lisa.encode(image, QUESTION, [1, 3]), again.encode(image, QUESTION, [1, 3])
    assert np.array_equal(a.prompt_embedding, b.prompt_embedding) and np.array_equal(
        a.attention, b.attention
    )
    assert a.generated_text == b.generated_text and np.array_equal(
        a.token_boxes_xyxy, b.token_boxes_xyxy
    )
    # pad mode: 80x60 centred on an 80x80 square (10 px on top), 20 px cells
    assert a.token_boxes_xyxy[0].tolist() == [0, -10, 20, 10] and a.token_boxes_xyxy[
        -1
    ].tolist() == [60, 50, 80, 70]
    rebuilt = build_tiny_lisa(tmp_path / "rebuilt")
    assert (rebuilt / "model.safetensors").read_bytes() == (
        lisa_dir / "model.safetensors"
    ).read_bytes()
    assert (rebuilt / "sam.pth").read_bytes() == (lisa_dir / "sam.pth").read_bytes()


def test_lisa_layout_weights_hold_projection_and_sam(lisa_dir, lisa, image, tmp_path):
    from core.models.lisa import find_lisa_sam, load_lisa, read_lisa_sam_state_dict
    from core.models.tiny_mllm import build_tiny_lisa
    from core.models.tiny_sam import build_tiny_sam

    d = build_tiny_lisa(tmp_path / "lisa-layout", layout="lisa")  # same seed, LISA's tensor names
    assert not (d / "text_hidden_fcs.pt").exists() and not (d / "sam.pth").exists()
    m = load_lisa(d, is_random=True)
    assert torch.equal(m.fcs[2].weight, lisa.fcs[2].weight)
    a, b = m.encode(image, QUESTION, [2]), lisa.encode(image, QUESTION, [2])
    assert np.array_equal(a.prompt_embedding, b.prompt_embedding)
    src = find_lisa_sam(d)
    assert src.kind == "weights" and src.prefix == "model.visual_model."
    assert find_lisa_sam(lisa_dir).kind == "file"
    sam = build_tiny_sam()
    state = read_lisa_sam_state_dict(d)
    sam.load_state_dict(state, strict=True)
    assert all(torch.equal(v, state[k]) for k, v in build_tiny_sam().state_dict().items())


def test_crop_mode_boxes_follow_the_processor(lisa_dir, image, tmp_path):
    from core.models.lisa import crop_token_boxes, load_lisa

    shutil.copytree(lisa_dir, tmp_path / "v1")
    (tmp_path / "v1" / "rea2seg.json").write_text(
        json.dumps({"image_aspect_ratio": "crop", "max_new_tokens": 0})
    )
    m = load_lisa(tmp_path / "v1", is_random=True)
    out = m.encode(image, "which cube ?", [1])
    assert np.array_equal(out.token_boxes_xyxy, crop_token_boxes((60, 80), 4, 56, (56, 56)))
    assert (
        not out.extra["seg_forced"] and m.max_new_tokens == 0
    )  # teacher-forced "[SEG].", as LISA's validation


def test_token_grid_follows_the_vision_tower(image, tmp_path):
    from core.models.lisa import load_lisa, pad_token_boxes
    from core.models.tiny_mllm import build_tiny_lisa

    m = load_lisa(
        build_tiny_lisa(tmp_path / "84px", image_size=84), is_random=True
    )  # 6 x 6 patches of 14 px
    out = m.encode(image, "which cube ?", [3])
    assert out.grid_hw == (6, 6) and out.attention.shape == (1, 4, 36)
    assert np.array_equal(out.token_boxes_xyxy, pad_token_boxes((60, 80), 6))


def test_loader_errors_name_the_file_and_setting(lisa_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from core.models.lisa import load_lisa

    with pytest.raises(
        ModelLoadError, match=r"'/nope/lisa' does not exist \(setting presets.x.mllm_path\)"
    ):
        load_lisa("/nope/lisa", setting="presets.x.mllm_path")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_lisa(tmp_path / "empty")
    raw = tmp_path / "released"
    raw.mkdir()
    (raw / "config.json").write_text(
        json.dumps({"architectures": ["LISAForCausalLM"], "hidden_size": 64})
    )
    with pytest.raises(ModelLoadError, match="rea2seg convert lisa"):
        load_lisa(raw)
    nofcs = tmp_path / "nofcs"
    shutil.copytree(lisa_dir, nofcs)
    (nofcs / "text_hidden_fcs.pt").unlink()
    with pytest.raises(
        ModelLoadError, match="no \\[SEG\\] projection.*text_hidden_fcs.pt' is missing"
    ):
        load_lisa(nofcs)
    holes = tmp_path / "holes"
    shutil.copytree(lisa_dir, holes)
    state = load_file(str(holes / "model.safetensors"))
    del state[next(k for k in state if k.endswith("layers.1.mlp.up_proj.weight"))]
    save_file(state, str(holes / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="refusing to run with random weights"):
        load_lisa(holes)
    (holes / "rea2seg.json").write_text(json.dumps({"image_aspect_ratio": "stretch"}))
    with pytest.raises(ModelLoadError, match="rea2seg.json' is not a valid.*image_aspect_ratio"):
        load_lisa(holes)


def test_bad_input_is_refused(lisa):
    with pytest.raises(ValueError, match="uint8"):
        lisa.encode(np.zeros((10, 10, 3), np.float32), "q")
    with pytest.raises(ValueError, match="out of range"):
        lisa.encode(np.zeros((10, 10, 3), np.uint8), "q", [7])


def test_default_prompt_is_lisas_conversation(lisa):
    from core.models.lisa import default_prompt
    from core.models.tiny_mllm import word_tokenizer

    p = lisa._prompt("Which cube?")
    assert p.startswith("A chat between a curious human and an artificial intelligence assistant.")
    assert p.endswith(" USER: <image>\n Which cube? Please output segmentation mask. ASSISTANT:")
    tok = word_tokenizer(
        ["<unk>", "<im_start>", "<im_end>"],
        ["a"],
        additional_special_tokens=["<im_start>", "<im_end>"],
    )
    assert "USER: <im_start>{image}<im_end>\n {question}" in default_prompt(tok)


def _llava_v1(user: str, answer: str) -> str:
    """LISA's ``llava_v1`` conversation template, written out: system, sep " ", "USER: " turn,
    sep " ", "ASSISTANT: " turn, sep2 "</s>" (LISA model/llava/conversation.py, SeparatorStyle.TWO)."""
    system = (
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
        "helpful, detailed, and polite answers to the human's questions."
    )
    return f"{system} USER: {user} ASSISTANT: {answer}</s>"


@pytest.mark.parametrize(
    "is_sentence, user",
    [
        (True, "<image>\n the red cube on the left Please output segmentation mask."),
        (None, "<image>\n the red cube on the left Please output segmentation mask."),
        (
            False,
            "<image>\n What is the red cube on the left in this image? Please output segmentation mask.",
        ),
    ],
)
def test_prompt_and_teacher_forced_answer_match_lisas_validation_token_for_token(
    lisa_dir, image, is_sentence, user
):
    """LISA's ReasonSeg ValDataset: "<image>\n {text} Please output ..." for sentences, "<image>\n What
    is {text} in this image? ..." for phrases, answer "[SEG]." fed (no generation)."""
    from core.models.lisa import load_lisa

    lisa = load_lisa(
        lisa_dir, is_random=True, max_new_tokens=0
    )  # LISA's validation: nothing generated
    ref = _llava_v1(user, "[SEG].")
    text = lisa._prompt("  the red cube on the left ", is_sentence)
    assert ref == text + " [SEG].</s>"
    sp = lisa.prepare(image, "  the red cube on the left ", is_sentence)
    upto_seg = ref[: ref.index("[SEG]") + len("[SEG]")]
    model_image, _ = lisa._image_and_boxes(image)
    want = lisa.processor(images=model_image, text=upto_seg, return_tensors="pt")["input_ids"][
        0
    ].tolist()
    assert sp.kwargs["input_ids"][0].tolist() == want
    assert not sp.extra["seg_forced"]
