"""LENS-style Qwen2.5-VL + SAM2: tiny random-init real classes through the real loaders."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from core.models.base import ModelLoadError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lens_dir(tmp_path_factory):
    from core.models.tiny_mllm import build_tiny_lens

    return build_tiny_lens(tmp_path_factory.mktemp("lens") / "m")


@pytest.fixture(scope="module")
def lens(lens_dir):
    from core.models.lens import load_lens

    return load_lens(lens_dir, is_random=True, max_new_tokens=3)


@pytest.fixture(scope="module")
def eager(lens_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration.from_pretrained(
        lens_dir, local_files_only=True, attn_implementation="eager"
    ).eval()


@pytest.fixture(scope="module")
def sam2():
    from core.models.sam_backend import Sam2Backend
    from core.models.tiny_sam import build_tiny_sam2

    return Sam2Backend(build_tiny_sam2(), name="sam2-tiny", is_random=True)


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(1).random((60, 80, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("positions", ["sequential", "mrope"])
def test_lean_rows_equal_eager_attention(lens, eager, image, positions):
    from core.models.attention import AttentionRowCapture, decoder_layers

    before = lens.options
    lens.options = dataclasses.replace(before, positions=positions)
    try:
        sp = lens.prepare(image, "which cube ?")
        with torch.inference_mode():
            ref = eager(**sp.kwargs, output_attentions=True).attentions
        out = lens.encode(image, "which cube ?", [0, 1, 2, 3])
    finally:
        lens.options = before
    for n in range(4):
        want = ref[n][0, :, sp.query_index, sp.image_positions].float().numpy()
        assert np.allclose(out.attention[n], want, atol=1e-5, rtol=0)
    with (
        torch.inference_mode(),
        AttentionRowCapture(decoder_layers(eager), [2], sp.query_index) as cap,
    ):
        eager(**sp.kwargs)  # the capture works on the eager kernel too
    assert torch.allclose(cap.rows()[0], ref[2][0, :, sp.query_index], atol=1e-5)
    if positions == "sequential":  # LENS's second pass: plain 1-D positions for every token
        assert (
            sp.kwargs["position_ids"][:, 0].tolist()
            == [list(range(sp.kwargs["input_ids"].shape[1]))] * 3
        )
    else:
        assert "position_ids" not in sp.kwargs and sp.kwargs["mm_token_type_ids"].sum() == len(
            sp.image_positions
        )


def test_first_query_geometry_and_head(lens, image):
    out = lens.encode(image, "which cube ?")
    sp = lens.prepare(image, "which cube ?")
    nq = lens.queries.shape[0]
    assert sp.query_index == sp.kwargs["input_ids"].shape[1] - nq == out.extra["query_position"]
    assert torch.equal(sp.kwargs["inputs_embeds"][0, sp.query_index :], lens.queries)
    # 60x80 → longest side 640 (480x640) → smart_resize to the tiny budget 84x112 → 3x4 merged tokens
    assert (
        out.grid_hw == (3, 4) and out.attention.shape == (1, 4, 12) and lens.default_layers == [3]
    )
    assert out.token_boxes_xyxy[-1].tolist() == pytest.approx([60, 40, 80, 60])
    assert out.prompt_embedding.shape == (1, 256) and out.prompt_token == "query[0]"
    with torch.inference_mode():
        hs = lens.model.model(**sp.kwargs).last_hidden_state[0, sp.query_index :]
        assert np.allclose(out.prompt_embedding, lens.connector(hs.float()).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        lens.encode(image, "q", [33])


def test_round_trip_and_released_layout_give_identical_outputs(lens_dir, lens, image, tmp_path):
    from core.models.lens import load_lens
    from core.models.tiny_mllm import build_tiny_lens

    shutil.copytree(lens_dir, tmp_path / "copy")
    again = load_lens(tmp_path / "copy", is_random=True, max_new_tokens=3)
    a, b = lens.encode(image, "which cube ?", [3]), again.encode(image, "which cube ?", [3])
    assert np.array_equal(a.prompt_embedding, b.prompt_embedding) and np.array_equal(
        a.attention, b.attention
    )
    # LENS's own names (learnable_query, connector.*, conv_1d.*, proj_to_sam.*, legacy model.layers.*/visual.*)
    rel = build_tiny_lens(tmp_path / "released", layout="lens")
    assert not (rel / "lens_head.pt").exists()
    m = load_lens(rel, is_random=True, max_new_tokens=3)
    c = m.encode(image, "which cube ?", [3])
    assert np.array_equal(a.prompt_embedding, c.prompt_embedding) and np.array_equal(
        a.attention, c.attention
    )
    assert m.connector.connector is not None and len(m.connector.connector.blocks) == 2
    m.connector.connector = None  # the connector is in the path
    assert not np.allclose(
        m.encode(image, "which cube ?", [3]).prompt_embedding, a.prompt_embedding
    )


def test_loader_errors_name_the_file_and_setting(lens_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from core.models.lens import load_lens

    with pytest.raises(
        ModelLoadError, match=r"'/nope' does not exist \(setting presets.lens-3b.mllm_path\)"
    ):
        load_lens("/nope", setting="presets.lens-3b.mllm_path")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_lens(tmp_path / "empty")
    d = tmp_path / "nohead"
    shutil.copytree(lens_dir, d)
    (d / "lens_head.pt").unlink()
    with pytest.raises(
        ModelLoadError, match="lens_head.pt' is missing and the checkpoint has no learnable_query"
    ):
        load_lens(d)
    d = tmp_path / "holes"
    shutil.copytree(lens_dir, d)
    state = load_file(str(d / "model.safetensors"))
    del state[next(k for k in state if k.endswith("layers.2.self_attn.k_proj.weight"))]
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="refusing to run with random weights"):
        load_lens(d)
    (d / "rea2seg.json").write_text(json.dumps({"positions": "3d"}))
    with pytest.raises(ModelLoadError, match="rea2seg.json' is not a valid.*positions"):
        load_lens(d)


def test_query_connector_known_answer():
    from core.models.lens import QueryConnector

    c = QueryConnector(32, 4, depth=3, num_heads=4, mlp_ratio=2)
    for prm in c.parameters():
        torch.nn.init.zeros_(prm)
    with torch.no_grad():
        c.pos_embed.normal_()
    x = torch.randn(1, 4, 32)
    # with zero projections every block is the identity: output = input + position embedding
    assert torch.allclose(c(x), x + c.pos_embed, atol=1e-6)


def test_sam2_seed_amg_equals_generate_and_full_stage1(lens, sam2, image):
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    from core.pipeline.settings import Stage1Settings
    from core.pipeline.stage1 import run_stage1

    seeds = np.array([[10, 10], [40, 30], [70, 50]], np.float32)
    cfg = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 0.7}
    sam2.set_image(image)
    calls = sam2.embed_calls
    ours = sam2.amg_from_seeds(seeds, cfg)
    assert sam2.embed_calls == calls
    gen = SAM2AutomaticMaskGenerator(
        sam2.model,
        points_per_side=None,
        point_grids=[seeds / np.array([80, 60])],
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        box_nms_thresh=0.7,
    )
    gen.predictor._bb_feat_sizes = sam2.predictor._bb_feat_sizes  # the tiny model runs at 256 px
    ref = gen.generate(image)  # recomputes the embedding
    assert len(ours) == len(ref) > 0
    for a, r in zip(ours, ref, strict=True):
        assert np.array_equal(a.mask, r["segmentation"])
    s = Stage1Settings.for_backbone(
        "sam2",
        layers=None,
        k1=6,
        k2=4,
        seeds_total=8,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    tr = run_stage1(lens, sam2, image, "which cube ?", s, preset="tiny-lens")
    assert (
        tr.attention.grid_hw == (3, 4)
        and tr.settings["tau"] == 0.7
        and tr.settings["delta"] == -10.0
    )
    assert tr.candidates and tr.is_random and tr.attention.prompt_token == "query[0]"
