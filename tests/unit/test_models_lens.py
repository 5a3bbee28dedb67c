"""LENS-style Qwen2.5-VL + SAM2: tiny random-init real classes through the real loaders."""

from __future__ import annotations

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
def sam2():
    from core.models.sam_backend import Sam2Backend
    from core.models.tiny_sam import build_tiny_sam2

    return Sam2Backend(build_tiny_sam2(), name="sam2-tiny", is_random=True)


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(1).random((60, 80, 3)) * 255).astype(np.uint8)


def test_lean_attention_row_equals_eager_on_qwen25vl(lens_dir, lens, image):
    from transformers import Qwen2_5_VLForConditionalGeneration

    from core.models.attention import AttentionRowCapture

    eager = Qwen2_5_VLForConditionalGeneration.from_pretrained(lens_dir, local_files_only=True, attn_implementation="eager").eval()
    text = lens.processor.apply_chat_template(lens._messages("which cube ?"), add_generation_prompt=True, tokenize=False)
    inputs = lens.processor(images=[image], text=[text], return_tensors="pt")
    q = inputs["input_ids"].shape[1] - 2
    with torch.inference_mode():
        ref = eager(**inputs, output_attentions=True).attentions
        with AttentionRowCapture(lens.model.model.language_model.layers, [0, 3], q) as cap:
            lens.model(**inputs)
    rows = cap.rows()
    for n, layer in enumerate([0, 3]):
        assert torch.allclose(rows[n], ref[layer][0, :, q].float(), atol=1e-5)


def test_lens_round_trip_geometry_and_first_query(lens_dir, lens, image, tmp_path):
    import shutil

    from core.models.lens import load_lens

    shutil.copytree(lens_dir, tmp_path / "copy")
    again = load_lens(tmp_path / "copy", is_random=True, max_new_tokens=3)
    a = lens.encode(image, "which cube ?", [3])
    b = again.encode(image, "which cube ?", [3])
    assert np.array_equal(a.prompt_embedding, b.prompt_embedding) and np.array_equal(a.attention, b.attention)
    assert a.prompt_embedding.shape == (1, 256) and a.prompt_token == "query[0]"  # conv_1d folds the 8 queries
    # 60x80 → smart_resize 56x84 → 28-px merged tokens: a 2x3 grid over the original image
    assert a.grid_hw == (2, 3) and a.attention.shape == (1, 4, 6)
    assert a.token_boxes_xyxy[-1].tolist() == pytest.approx([160 / 3, 30, 80, 60])
    assert lens.default_layers == [3]  # layer 33 clipped to this 4-layer model
    with pytest.raises(ModelLoadError, match="lens_head.pt' is missing"):
        (tmp_path / "empty").mkdir()
        load_lens(tmp_path / "empty")


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
    gen = SAM2AutomaticMaskGenerator(sam2.model, points_per_side=None, point_grids=[seeds / np.array([80, 60])],
                                     pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.7)
    gen.predictor._bb_feat_sizes = sam2.predictor._bb_feat_sizes  # the tiny model runs at 256 px
    ref = gen.generate(image)  # recomputes the embedding
    assert len(ours) == len(ref) > 0
    for a, r in zip(ours, ref, strict=True):
        assert np.array_equal(a.mask, r["segmentation"])
    s = Stage1Settings.for_backbone("sam2", layers=None, k1=6, k2=4, seeds_total=8, pred_iou_thresh=0.0,
                                    stability_score_thresh=0.0)
    tr = run_stage1(lens, sam2, image, "which cube ?", s, preset="tiny-lens")
    assert tr.attention.grid_hw == (2, 3) and tr.settings["tau"] == 0.7 and tr.settings["delta"] == -10.0
    assert tr.candidates and tr.is_random and tr.attention.prompt_token == "query[0]"


def test_released_checkpoint_layout_loads_with_its_connector(lens_dir, image, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from core.models.lens import QueryConnector, load_lens

    raw = tmp_path / "released"
    shutil.copytree(lens_dir, raw)
    head = torch.load(raw / "lens_head.pt", weights_only=True)
    (raw / "lens_head.pt").unlink()
    weights = load_file(str(raw / "model.safetensors"))
    torch.manual_seed(3)
    conn = QueryConnector(64, 8, depth=2, num_heads=16, mlp_ratio=4)
    for prm in conn.parameters():
        torch.nn.init.normal_(prm, std=0.02)
    weights["learnable_query"] = head["queries"]
    weights.update({f"conv_1d.{k}": v for k, v in head["conv_1d"].items()})
    weights.update({f"proj_to_sam.{k}": v for k, v in head["proj_to_sam"].items()})
    weights.update({f"connector.{k}": v.detach().clone() for k, v in conn.state_dict().items()})
    save_file({k: v.contiguous() for k, v in weights.items()}, str(raw / "model.safetensors"))
    m = load_lens(raw, is_random=True, max_new_tokens=2)
    assert m.connector.connector is not None and len(m.connector.connector.blocks) == 2
    out = m.encode(image, "which cube ?", [3])
    assert out.prompt_embedding.shape == (1, 256)
    # the connector is in the path: removing it changes the prompt embedding
    m.connector.connector = None
    assert not np.allclose(m.encode(image, "which cube ?", [3]).prompt_embedding, out.prompt_embedding)


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
