"""SAM / SAM2 backends on tiny random-init real architectures: loaders, prompt decoding against the
libraries' own predictors, mask-prompt geometry, and seed-point AMG against ``generate()``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.models.base import ModelLoadError, SamBackend

pytestmark = pytest.mark.slow


def _image(hw=(60, 80), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = (rng.random((*hw, 3)) * 255).astype(np.uint8)
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    img[(yy - hw[0] // 2) ** 2 + (xx - hw[1] // 2) ** 2 < 200] = (250, 20, 20)
    return img


@pytest.fixture(scope="module")
def sam_v1():
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam

    return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)


@pytest.fixture(scope="module")
def sam2():
    from core.models.sam_backend import Sam2Backend
    from core.models.tiny_sam import build_tiny_sam2

    return Sam2Backend(build_tiny_sam2(), name="sam2-tiny", is_random=True)


@pytest.fixture(params=["sam", "sam2"])
def backend(request, sam_v1, sam2):
    return sam_v1 if request.param == "sam" else sam2


def _encoder(b):
    return b.sam.image_encoder if b.kind == "sam" else b.model.image_encoder


# -- tiny builds and loaders -------------------------------------------------------------------


def test_tiny_builds_are_deterministic_and_leave_the_global_rng_alone():
    from core.models.tiny_sam import build_tiny_sam

    state = torch.get_rng_state()
    a, b, c = build_tiny_sam(seed=0), build_tiny_sam(seed=0), build_tiny_sam(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    ka = a.state_dict()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in ka.items())
    w = "image_encoder.patch_embed.proj.weight"
    assert not torch.equal(ka[w], c.state_dict()[w])
    assert a.image_encoder.img_size == 256 and sum(p.numel() for p in a.parameters()) < 5_000_000


@pytest.mark.parametrize("kind", ["sam", "sam2"])
def test_tiny_checkpoint_round_trips_through_load_sam_backend(kind, tmp_path, sam_v1, sam2):
    from core.models.sam_backend import Sam2Backend, SamV1Backend, load_sam_backend
    from core.models.tiny_sam import save_tiny_sam, save_tiny_sam2

    path = (save_tiny_sam if kind == "sam" else save_tiny_sam2)(tmp_path / f"{kind}.pt")
    loaded = load_sam_backend(kind, path)
    ref = sam_v1 if kind == "sam" else sam2
    assert isinstance(loaded, SamV1Backend if kind == "sam" else Sam2Backend)
    assert isinstance(loaded, SamBackend) and loaded.is_random and loaded.kind == kind
    img = _image()
    emb = np.random.default_rng(3).standard_normal((1, 256)).astype(np.float32)
    loaded.set_image(img)
    ref.set_image(img)
    a, ia, la = loaded.decode_prompt_embedding(emb, multimask=True)
    b, ib, lb = ref.decode_prompt_embedding(emb, multimask=True)
    assert np.array_equal(a, b) and np.array_equal(ia, ib) and np.array_equal(la, lb)


def test_a_bare_state_dict_goes_through_the_sam_registry(tmp_path, monkeypatch):
    import segment_anything

    from core.models.sam_backend import load_sam_backend
    from core.models.tiny_sam import build_tiny_sam

    # a released checkpoint is a bare state dict for sam_model_registry[model_type]; a tiny
    # build stands in for ViT-B here so the test stays small
    monkeypatch.setitem(
        segment_anything.sam_model_registry, "vit_b", lambda checkpoint=None: build_tiny_sam(seed=5)
    )
    torch.save(build_tiny_sam(seed=7).state_dict(), tmp_path / "sam_vit_b.pth")
    b = load_sam_backend("sam", tmp_path / "sam_vit_b.pth", model_type="vit_b")
    assert not b.is_random and b.name == "sam-vit_b:sam_vit_b.pth"
    w = "image_encoder.patch_embed.proj.weight"
    assert torch.equal(
        b.sam.state_dict()[w], build_tiny_sam(seed=7).state_dict()[w]
    )  # the file's weights
    sd = build_tiny_sam().state_dict()
    sd.pop(w)
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(
        ModelLoadError, match=r"cut.pth' does not fit SAM vit_b .*\(setting sam_checkpoint\)"
    ):
        load_sam_backend("sam", tmp_path / "cut.pth", model_type="vit_b")


def test_loader_errors_name_the_file_and_the_setting(tmp_path):
    from core.models.sam_backend import load_sam_backend
    from core.models.tiny_sam import save_tiny_sam2

    with pytest.raises(
        ModelLoadError,
        match=r"sam checkpoint '.*nope.pth' does not exist \(setting presets.x.sam_checkpoint\)",
    ):
        load_sam_backend("sam", tmp_path / "nope.pth", setting="presets.x.sam_checkpoint")
    with pytest.raises(
        ModelLoadError, match=r"no sam2 checkpoint is set \(setting sam2_checkpoint\)"
    ):
        load_sam_backend("sam2", None)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ModelLoadError, match="junk.pth' is not a torch checkpoint"):
        load_sam_backend("sam", tmp_path / "junk.pth")
    save_tiny_sam2(tmp_path / "s2.pt")
    with pytest.raises(ModelLoadError, match="unknown SAM model type 'vit_q'"):
        torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pth")
        load_sam_backend("sam", tmp_path / "plain.pth", model_type="vit_q")
    with pytest.raises(ModelLoadError, match="SAM2 config 'configs/nope.yaml' could not be used"):
        torch.save({"model": {}}, tmp_path / "released2.pt")
        load_sam_backend("sam2", tmp_path / "released2.pt", model_cfg="configs/nope.yaml")
    with pytest.raises(ModelLoadError, match="unknown SAM kind"):
        load_sam_backend("sam3", tmp_path / "s2.pt")


# -- embedding cache ---------------------------------------------------------------------------


def test_image_is_embedded_once_per_distinct_image(backend):
    calls = []
    hook = _encoder(backend).register_forward_hook(lambda *a: calls.append(1))
    try:
        backend.reset_image()
        img = _image(seed=4)
        backend.set_image(img)
        backend.set_image(img.copy())  # same pixels: cached
        assert len(calls) == 1
        backend.set_image(_image(seed=5))
        assert len(calls) == 2
    finally:
        hook.remove()
    with pytest.raises(ValueError, match="uint8"):
        backend.set_image(np.zeros((4, 4), np.float32))


def test_calls_before_set_image_are_refused():
    from core.models.sam_backend import SamV1Backend
    from core.models.tiny_sam import build_tiny_sam

    b = SamV1Backend(build_tiny_sam())
    with pytest.raises(RuntimeError, match="set_image"):
        b.decode_prompt_embedding(np.zeros((1, 256), np.float32), multimask=False)


# -- prompt decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize("multimask", [True, False])
def test_prompt_embedding_decode_equals_the_predictor_for_a_point_prompt(backend, multimask):
    """The point prompt's own sparse tokens fed as a "prompt embedding" must reproduce the
    library predictor's answer for that point: same decoder, same postprocessing, same scale."""
    img = _image((61, 93), seed=2)
    backend.set_image(img)
    pts, labels = np.array([[40.0, 25.0]], np.float32), np.array([1], np.int32)
    p = backend.predictor
    if backend.kind == "sam":
        coords = torch.as_tensor(p.transform.apply_coords(pts, p.original_size))[None]
        sparse, _ = backend.sam.prompt_encoder(
            points=(coords, torch.as_tensor(labels)[None]), boxes=None, masks=None
        )
    else:
        _, coords, lab, _ = p._prep_prompts(pts, labels, None, None, True)
        sparse, _ = backend.model.sam_prompt_encoder(points=(coords, lab), boxes=None, masks=None)
    logits, iou, low = backend.decode_prompt_embedding(
        sparse[0].detach().numpy(), multimask=multimask
    )
    ref, ref_iou, ref_low = p.predict(
        point_coords=pts, point_labels=labels, multimask_output=multimask, return_logits=True
    )
    assert logits.shape == (3 if multimask else 1, 61, 93) and logits.dtype == np.float32
    assert np.allclose(logits, ref, atol=1e-4) and np.allclose(iou, ref_iou, atol=1e-5)
    # the low-res logits come back from the call, as the predictor returns them; nothing is left
    # behind on the backend for the next caller to find
    if backend.kind == "sam2":  # SAM2's predictor clamps the low-res logits it returns
        low = np.clip(low, -32.0, 32.0)
    assert low.dtype == np.float32 and np.allclose(low, ref_low, atol=1e-4)
    assert not any("lowres" in name for name in vars(backend))


def test_sam_mask_prompt_geometry_is_the_inverse_of_postprocess_masks():
    from segment_anything.utils.transforms import ResizeLongestSide

    from core.models.sam_backend import sam2_lowres_mask_prompt, sam_lowres_mask_prompt
    from core.models.tiny_sam import build_tiny_sam

    # constant L: the image part of the 64x64 frame is L, the padding is min(L, 0)
    lo = sam_lowres_mask_prompt(np.full((60, 80), 5.0, np.float32), 256)
    assert lo.shape == (1, 64, 64)
    assert np.allclose(lo[0, :48], 5.0) and np.allclose(
        lo[0, 48:], 0.0
    )  # 60x80 → 192x256 → 48 rows
    lo = sam_lowres_mask_prompt(np.full((80, 60), -3.0, np.float32), 256)
    assert np.allclose(lo[0, :, :48], -3.0) and np.allclose(lo[0, :, 48:], -3.0)
    # round trip: a smooth low-res map through Sam.postprocess_masks and back
    sam = build_tiny_sam()
    yy, xx = np.mgrid[0:64, 0:64] / 64
    low = (10 * np.sin(2 * np.pi * xx * 1.3) + 8 * np.cos(2 * np.pi * yy * 0.9)).astype(np.float32)
    for hw in [(60, 80), (61, 93), (300, 200)]:
        nh, nw = ResizeLongestSide.get_preprocess_shape(*hw, 256)
        L = sam.postprocess_masks(torch.from_numpy(low)[None, None], (nh, nw), hw)[0, 0].numpy()
        back = sam_lowres_mask_prompt(L, 256)[0]
        assert np.abs(back[: nh // 4, : nw // 4] - low[: nh // 4, : nw // 4]).max() < 0.5
        assert np.allclose(back[(nh + 3) // 4 :], min(L.min(), 0)) and np.allclose(
            back[:, (nw + 3) // 4 :], min(L.min(), 0)
        )
    # SAM2 stretches to the square: no padding
    L = F.interpolate(
        torch.from_numpy(low)[None, None], (60, 80), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    assert np.abs(sam2_lowres_mask_prompt(L, 256)[0] - low).max() < 0.5


def test_predict_points_passes_the_converted_mask_prompt(backend, monkeypatch):
    from core.models.sam_backend import sam2_lowres_mask_prompt, sam_lowres_mask_prompt

    img = _image()
    backend.set_image(img)
    L = np.random.default_rng(0).standard_normal((60, 80)).astype(np.float32) * 10
    seen = {}
    real = backend.predictor.predict

    def spy(**kw):
        seen.update(kw)
        return real(**kw)

    monkeypatch.setattr(backend.predictor, "predict", spy)
    logits, iou = backend.predict_points(
        np.array([[10, 20], [50, 30]]), np.array([1, 0]), L, multimask=True
    )
    conv = (
        sam_lowres_mask_prompt(L, 256) if backend.kind == "sam" else sam2_lowres_mask_prompt(L, 256)
    )
    assert np.array_equal(seen["mask_input"], conv) and seen["point_labels"].tolist() == [1, 0]
    assert logits.shape == (3, 60, 80) and iou.shape == (3,)
    with pytest.raises(ValueError, match="2 points but 1 labels"):
        backend.predict_points(np.array([[10, 20], [50, 30]]), np.array([1]), None, multimask=False)


def _oracle_predictor(kind: str):
    """A fresh library predictor on an independently built tiny model with the same seed."""
    if kind == "sam":
        from segment_anything import SamPredictor

        from core.models.tiny_sam import build_tiny_sam

        return SamPredictor(build_tiny_sam().eval())
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from core.models.sam_backend import Sam2Backend
    from core.models.tiny_sam import build_tiny_sam2

    model = build_tiny_sam2().eval()
    pred = SAM2ImagePredictor(model)
    pred._bb_feat_sizes = Sam2Backend.feat_sizes(model.image_size)
    return pred


@pytest.mark.parametrize("with_clicks", [False, True])
def test_box_prompt_gives_the_library_predictors_mask(backend, with_clicks):
    img = _image((61, 93))
    box = np.array([12.0, 8.0, 70.0, 50.0])  # (x0, y0, x1, y1) in image pixels
    pts = np.array([[40.0, 30.0], [15.0, 45.0]]) if with_clicks else None
    lab = np.array([1, 0]) if with_clicks else None
    oracle = _oracle_predictor(backend.kind)
    with torch.inference_mode():
        oracle.set_image(img)
        want, want_iou, _ = oracle.predict(
            point_coords=None if pts is None else pts.astype(np.float32),
            point_labels=lab,
            box=box,
            multimask_output=False,
            return_logits=True,
        )
    backend.set_image(img)
    got, got_iou = backend.predict_points(pts, lab, None, multimask=False, box_xyxy=tuple(box))
    assert got.shape == (1, 61, 93)
    assert np.array_equal(got > 0, want > 0) and np.allclose(got, want, atol=1e-5)
    assert np.allclose(got_iou, want_iou, atol=1e-6)
    # the box is a real prompt: without it the decoder answers differently
    plain, _ = backend.predict_points(
        pts if with_clicks else np.array([[40.0, 30.0]]),
        lab if with_clicks else np.array([1]),
        None,
        multimask=False,
    )
    assert not np.allclose(plain, got)


@pytest.mark.parametrize("box", [(10, 10, 5, 20), (1, 2, 3), (0, 0, float("nan"), 4), "abcd"])
def test_bad_box_prompts_are_refused(sam_v1, box):
    sam_v1.set_image(_image())
    with pytest.raises(ValueError, match="box must"):
        sam_v1.predict_points(None, None, None, multimask=False, box_xyxy=box)


def test_embedding_scale_maps_cell_centres_onto_cells(sam_v1, sam2):
    from core.pipeline.semantic import sample_features

    img = _image((61, 80))
    for b in (sam_v1, sam2):
        b.set_image(img)
    # SAM: 61x80 → 195x256 (longest side, rounded as SamPredictor does), 16-px cells
    assert sam_v1.embedding_xy_scale() == pytest.approx((256 / 80 / 16, 195 / 61 / 16))
    assert sam2.embedding_xy_scale() == pytest.approx(
        (16 / 80, 16 / 61)
    )  # stretched to 256², 16 cells
    # 60x80 image: SAM cells are 5 px, so pixel (2 + 5j, 2 + 5i) sits on cell (i, j)'s centre
    img = _image((60, 80))
    sam_v1.set_image(img)
    f = sam_v1.image_features()
    pts = np.array([[2 + 5 * j, 2 + 5 * i] for i, j in [(0, 0), (3, 7), (11, 15)]], np.float32)
    got = sample_features(f, pts, sam_v1.embedding_xy_scale())
    assert np.allclose(got, np.stack([f[:, 0, 0], f[:, 3, 7], f[:, 11, 15]]), atol=1e-5)


# -- seed-point AMG ----------------------------------------------------------------------------


def _reference_generate(b, img, seeds, cfg):
    grid = [seeds / np.array([img.shape[1], img.shape[0]], np.float64)]
    if b.kind == "sam":
        from segment_anything import SamAutomaticMaskGenerator

        gen = SamAutomaticMaskGenerator(b.sam, points_per_side=None, point_grids=grid, **cfg)
    else:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

        gen = SAM2AutomaticMaskGenerator(b.model, points_per_side=None, point_grids=grid, **cfg)
        gen.predictor._bb_feat_sizes = b.predictor._bb_feat_sizes  # the tiny model runs at 256 px
    return gen.generate(img)  # embeds the image itself


CONFIGS = {
    "sam": [
        {
            "pred_iou_thresh": 0.0,
            "stability_score_thresh": 0.0,
            "box_nms_thresh": 1.0,
            "points_per_batch": 3,
        },
        {
            "pred_iou_thresh": 0.0,
            "stability_score_thresh": 0.3,
            "stability_score_offset": 0.02,
            "box_nms_thresh": 0.7,
        },
    ],
    "sam2": [
        {
            "pred_iou_thresh": 0.0,
            "stability_score_thresh": 0.0,
            "box_nms_thresh": 1.0,
            "points_per_batch": 3,
        },
        {"pred_iou_thresh": 0.53, "stability_score_thresh": 0.0, "box_nms_thresh": 0.7},
    ],
}


def test_seed_amg_equals_library_generate_on_the_cached_embedding(backend):
    img = _image()
    seeds = np.array(
        [[10, 10], [40, 30], [70, 50], [20, 45], [40, 30], [5, 55], [60, 8]], np.float32
    )
    backend.reset_image()
    backend.set_image(img)
    calls = []
    hook = _encoder(backend).register_forward_hook(lambda *a: calls.append(1))
    try:
        results = [backend.amg_from_seeds(seeds, cfg) for cfg in CONFIGS[backend.kind]]
    finally:
        hook.remove()
    assert not calls  # no second encoder pass
    for cfg, ours in zip(CONFIGS[backend.kind], results, strict=True):
        ref = _reference_generate(backend, img, seeds, cfg)
        assert len(ours) == len(ref) > 0
        for a, r in zip(ours, ref, strict=True):
            assert np.array_equal(a.mask, r["segmentation"])
            assert a.predicted_iou == r["predicted_iou"] and a.stability == r["stability_score"]
            assert np.allclose(seeds[a.seed_index], r["point_coords"][0], atol=1e-4)
            assert a.seed_index != 4  # seed 4 repeats seed 1: the first index is reported
        assert [a.predicted_iou for a in ours] == sorted(
            (a.predicted_iou for a in ours), reverse=True
        )
    assert len(results[0]) != len(results[1])  # the second setting's filters changed the output
    assert backend.amg_from_seeds(np.zeros((0, 2), np.float32), CONFIGS[backend.kind][0]) == []


def test_seed_amg_refuses_to_embed_a_different_image(sam_v1, monkeypatch):
    from core.models import sam_backend

    sam_v1.set_image(_image())
    p = sam_backend._EmbeddedPredictor(sam_v1.predictor, sam_v1._image)
    p.set_image(_image())
    with pytest.raises(RuntimeError, match="different image"):
        p.set_image(_image(seed=9))
