"""What-if on stage 1 (core.pipeline.tune): the MLLM forward and the SAM embedding once, every
parameter-dependent step again, with the same trace as a full stage 1 (§4.2)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.pipeline.settings import Stage1Settings
from core.pipeline.stage1 import run_stage1
from core.pipeline.tune import NeedsForward, layer_count, prepare_stage1, retune
from tests.unit.test_pipeline_stage1 import HandPromptModel, red_image, tiny_backend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sam", "sam2"])
def backend(request):
    return tiny_backend(request.param)


@pytest.fixture(scope="module")
def image():
    return red_image()


def _settings(kind: str, **kw) -> Stage1Settings:
    base = {
        "layers": None,
        "k1": 8,
        "k2": 4,
        "seeds_total": 10,
        "seed_policy": "proportional",
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "box_nms_thresh": 0.9,
    }
    return Stage1Settings.for_backbone(kind, **{**base, **kw})


def _encoder(b):
    return b.sam.image_encoder if b.kind == "sam" else b.model.image_encoder


def same_trace(a, b) -> bool:
    """Equal traces but for the timings (masks compared as their RLE)."""
    da, db = a.to_dict(), b.to_dict()
    da.pop("timings"), db.pop("timings")
    return da == db


CHANGES = [
    {},
    {"k1": 6, "k2": 3},
    {"seed_policy": "one_per_token"},
    {"tau": 0.5, "delta": -0.5},
    {"pred_iou_thresh": 0.5, "box_nms_thresh": 0.5},
    {"stability_score_thresh": 0.6, "box_nms_thresh": 0.3},
    {"stability_score_offset": 2.0, "pred_iou_thresh": 0.2},
    {"top_n": 2, "dedupe_iou": 0.8},
    {"heads": (0, 2), "mask_prompt": "rebuilt"},
]


def test_retune_reuses_the_forward_and_embedding_and_equals_a_full_stage1(backend, image):
    pm = HandPromptModel()
    s = _settings(backend.kind)
    backend.reset_image()
    cache = prepare_stage1(pm, backend, image, "which part is red ?", s, preset="hand")
    cache.use_seed_bank = False  # whole seed sets: equal to the last bit (the bank:
    # tests/unit/test_seed_bank.py, equal up to the decoder's rounding)
    assert pm.calls == 1 and set(cache.timings) == {"mllm", "sam_embed", "initial"}
    encoder_calls: list[int] = []
    hook = _encoder(backend).register_forward_hook(lambda *a: encoder_calls.append(1))
    try:
        tuned = [retune(cache, replace(s, **ch)) for ch in CHANGES]
    finally:
        hook.remove()
    assert pm.calls == 1 and not encoder_calls  # neither model ran again
    assert "retune" in tuned[0].timings and tuned[0].timings["mllm"] == cache.timings["mllm"]
    for ch, tr in zip(CHANGES, tuned, strict=True):
        full = run_stage1(
            HandPromptModel(),
            backend,
            image,
            "which part is red ?",
            replace(s, **ch),
            preset="hand",
        )
        assert same_trace(tr, full), ch
        assert [c.origin for c in tr.candidates] == [c.origin for c in full.candidates]
    assert not same_trace(tuned[0], tuned[1])  # the settings do change the result


def test_retune_after_another_image_restores_the_embedding_without_the_encoder(backend, image):
    s = _settings(backend.kind)
    cache = prepare_stage1(HandPromptModel(), backend, image, "q", s)
    first = retune(cache, s)
    backend.set_image(np.zeros((30, 40, 3), np.uint8))  # someone else used the backend
    cache.memo.clear()  # force every SAM step to run again
    encoder_calls: list[int] = []
    hook = _encoder(backend).register_forward_hook(lambda *a: encoder_calls.append(1))
    try:
        again = retune(cache, s)
    finally:
        hook.remove()
    assert not encoder_calls and same_trace(first, again)


def test_a_change_reruns_only_the_steps_that_depend_on_it(backend, image, monkeypatch):
    s = _settings(backend.kind)
    cache = prepare_stage1(HandPromptModel(), backend, image, "q", s)
    first = retune(cache, s)
    import core.pipeline.tune_amg as tune_amg

    calls = {"amg": 0, "seeds": 0, "points": 0}
    real_batches, real_points = tune_amg._batches, backend.predict_points

    def batches(sam, seeds, *a, **k):
        calls["amg"] += 1
        calls["seeds"] += len(seeds)
        return real_batches(sam, seeds, *a, **k)

    def points(*a, **k):
        calls["points"] += 1
        return real_points(*a, **k)

    monkeypatch.setattr(tune_amg, "_batches", batches)  # the AMG's decoder passes
    monkeypatch.setattr(backend, "predict_points", points)
    retune(cache, replace(s, tau=0.3))  # the semantic step only
    assert calls == {"amg": 0, "seeds": 0, "points": 1}
    retune(cache, replace(s, tau=0.3, pred_iou_thresh=0.2, box_nms_thresh=0.5))  # re-filter
    retune(cache, replace(s, top_n=3, dedupe_iou=0.9))  # the merge only
    assert calls == {"amg": 0, "seeds": 0, "points": 1}
    n_seeds = len(first.seeds.seeds_xy)
    retune(cache, replace(s, stability_score_offset=2.0))  # AMG scores and semantic stability
    assert calls == {"amg": 1, "seeds": n_seeds, "points": 2}
    # new seeds: the semantic decode, and the AMG decodes only the seeds it has not seen (each
    # token's first seed is its centre whatever k2 is, so the 3 tokens kept are not decoded again)
    fewer = retune(cache, replace(s, k2=3))
    new = {tuple(p) for p in fewer.seeds.seeds_xy} - {tuple(p) for p in first.seeds.seeds_xy}
    assert calls == {"amg": 2, "seeds": n_seeds + len(new), "points": 3}
    assert 0 < len(new) < len(fewer.seeds.seeds_xy)


def test_layers_not_cached_need_a_new_forward(backend, image):
    pm = HandPromptModel()  # says nothing of its layer count: only the layers asked are cached
    assert layer_count(pm) is None
    s = _settings(backend.kind, layers=(0, 1))
    cache = prepare_stage1(pm, backend, image, "q", s)
    assert cache.cached_layers == [0, 1]
    retune(cache, replace(s, layers=(1,)))  # a subset is re-aggregated from the cache
    with pytest.raises(NeedsForward, match=r"layers \[5\].*new MLLM forward"):
        retune(cache, replace(s, layers=(1, 5)))
    with pytest.raises(ValueError, match="heads"):
        retune(cache, replace(s, heads=(7,)))
    assert pm.calls == 1


@pytest.fixture(scope="module")
def lisa_segmenter():
    from core.pipeline.cache import ModelCache

    return ModelCache(device="cpu").segmenter("tiny-random-lisa")


def test_tiny_lisa_caches_every_layer_and_reaggregates_exactly(lisa_segmenter, image, monkeypatch):
    from core.pipeline.settings import run_defaults

    seg = lisa_segmenter
    pm, sam = seg.prompt_model, seg.sam
    n = layer_count(pm)
    assert n is not None and n >= 2
    s = run_defaults(sam.kind, True)
    cache = prepare_stage1(pm, sam, image, "the red part", s, preset=seg.preset)
    cache.use_seed_bank = False  # whole seed sets: equal to the last bit (the bank:
    # tests/unit/test_seed_bank.py, equal up to the decoder's rounding)
    assert cache.cached_layers == list(range(n))
    calls: list[int] = []
    real = pm.encode
    monkeypatch.setattr(pm, "encode", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    tuned = [retune(cache, replace(s, layers=ly)) for ly in (None, (0,), tuple(range(n)))]
    assert not calls  # no MLLM forward for any choice of layers
    monkeypatch.setattr(pm, "encode", real)
    for ly, tr in zip((None, (0,), tuple(range(n))), tuned, strict=True):
        full = run_stage1(pm, sam, image, "the red part", replace(s, layers=ly), preset=seg.preset)
        assert same_trace(tr, full), ly
    assert tuned[0].attention.layers == pm.default_layers


def test_refiltering_the_decoded_masks_equals_the_generator_run_with_its_filters(backend, image):
    from core.pipeline.tune_amg import decode_all, refilter

    backend.set_image(image)
    seeds = np.array([[10, 10], [30, 25], [31, 26], [60, 40], [70, 50], [5, 55]], np.float32)
    masks, boxes = decode_all(backend, seeds, 1.0, 64)
    assert len(masks) == 3 * len(seeds)  # nothing dropped: every multimask output of every seed
    for pred, stab, nms in ((0.0, 0.0, 0.7), (0.4, 0.0, 0.9), (0.0, 0.7, 0.5), (0.3, 0.5, 0.2)):
        direct = backend.amg_from_seeds(
            seeds,
            {
                "pred_iou_thresh": pred,
                "stability_score_thresh": stab,
                "stability_score_offset": 1.0,
                "box_nms_thresh": nms,
                "points_per_batch": 64,
            },
        )
        again = refilter(masks, boxes, pred, stab, nms)
        assert [(m.predicted_iou, m.seed_index) for m in again] == [
            (m.predicted_iou, m.seed_index) for m in direct
        ]
        assert all(np.array_equal(a.mask, b.mask) for a, b in zip(again, direct, strict=True))


@pytest.fixture(scope="module")
def trained():
    """The bundled mini-geometric segmenter (trained: its AMG filters keep some masks and drop
    others) and a demo scene."""
    from core.images import load_image_rgb
    from core.paths import resource_path
    from core.pipeline.cache import ModelCache

    seg = ModelCache(device="cpu").segmenter("mini-geometric")
    return seg, load_image_rgb(resource_path("demo", "images", "scene00002.png"))


def test_refilter_equals_the_generator_on_a_trained_sam(trained):
    from core.pipeline.tune_amg import decode_all, refilter

    seg, img = trained
    seg.sam.set_image(img)
    rng = np.random.default_rng(0)
    seeds = np.stack(
        [rng.uniform(0, img.shape[1] - 1, 12), rng.uniform(0, img.shape[0] - 1, 12)], 1
    ).astype(np.float32)
    masks, boxes = decode_all(seg.sam, seeds, 1.0, 64)
    kept = []
    for pred, stab, nms in ((0.0, 0.0, 0.7), (0.5, 0.0, 0.9), (0.0, 0.8, 0.5), (0.7, 0.85, 0.3)):
        direct = seg.sam.amg_from_seeds(
            seeds,
            {
                "pred_iou_thresh": pred,
                "stability_score_thresh": stab,
                "stability_score_offset": 1.0,
                "box_nms_thresh": nms,
                "points_per_batch": 64,
            },
        )
        again = refilter(masks, boxes, pred, stab, nms)
        assert [(m.predicted_iou, m.seed_index) for m in again] == [
            (m.predicted_iou, m.seed_index) for m in direct
        ]
        assert all(np.array_equal(a.mask, b.mask) for a, b in zip(again, direct, strict=True))
        kept.append(len(direct))
    assert len(set(kept)) == len(kept) and 0 < min(kept) < len(masks)  # the filters bite


def test_retune_equals_stage1_with_the_paper_filters_on_a_trained_model(trained):
    from core.models.config import preset_stage1
    from core.pipeline.settings import run_defaults

    seg, img = trained
    s = run_defaults(seg.sam.kind, False, **preset_stage1(seg.preset))
    q = "Please segment the second matte thing from the back."
    cache = prepare_stage1(seg.prompt_model, seg.sam, img, q, s, preset=seg.preset)
    cache.use_seed_bank = False  # whole seed sets: equal to the last bit (the bank:
    # tests/unit/test_seed_bank.py, equal up to the decoder's rounding)
    n_amg = []
    for ch in ({}, {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.6}, {"k2": 12, "tau": 0.6}):
        tr = retune(cache, replace(s, **ch))
        full = run_stage1(seg.prompt_model, seg.sam, img, q, replace(s, **ch), preset=seg.preset)
        assert same_trace(tr, full), ch
        n_amg.append(sum(c.origin == "amg" for c in tr.candidates))
    assert n_amg[1] > n_amg[0]  # the looser filters keep more AMG masks
