"""What-if on stage 1 (core.pipeline.tune): the MLLM forward and the SAM embedding once, every
parameter-dependent step again, with the same trace as a full stage 1 (§4.2)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.pipeline.settings import Stage1Settings
from core.pipeline.stage1 import run_stage1
from core.pipeline.tune import NeedsForward, layer_count, prepare_stage1, retune
from tests.unit.test_pipeline_stage1 import HW, HandPromptModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sam", "sam2"])
def backend(request):
    from core.models.sam_backend import Sam2Backend, SamV1Backend
    from core.models.tiny_sam import build_tiny_sam, build_tiny_sam2

    if request.param == "sam":
        return SamV1Backend(build_tiny_sam(), name="sam-tiny", is_random=True)
    return Sam2Backend(build_tiny_sam2(), name="sam2-tiny", is_random=True)


@pytest.fixture(scope="module")
def image():
    img = (np.random.default_rng(0).random((*HW, 3)) * 255).astype(np.uint8)
    img[20:40, 25:60] = (240, 30, 30)
    return img


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
    {"top_n": 2, "dedupe_iou": 0.8},
    {"heads": (0, 2), "mask_prompt": "rebuilt"},
]


def test_retune_reuses_the_forward_and_embedding_and_equals_a_full_stage1(backend, image):
    pm = HandPromptModel()
    s = _settings(backend.kind)
    backend.reset_image()
    cache = prepare_stage1(pm, backend, image, "which part is red ?", s, preset="hand")
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
    retune(cache, s)
    calls = {"amg": 0, "points": 0}
    real_amg, real_points = backend.amg_from_seeds, backend.predict_points

    def amg(*a, **k):
        calls["amg"] += 1
        return real_amg(*a, **k)

    def points(*a, **k):
        calls["points"] += 1
        return real_points(*a, **k)

    monkeypatch.setattr(backend, "amg_from_seeds", amg)
    monkeypatch.setattr(backend, "predict_points", points)
    retune(cache, replace(s, tau=0.3))  # the semantic step only
    assert calls == {"amg": 0, "points": 1}
    retune(cache, replace(s, tau=0.3, pred_iou_thresh=0.2))  # the AMG only
    assert calls == {"amg": 1, "points": 1}
    retune(cache, replace(s, top_n=3, dedupe_iou=0.9))  # neither: the merge
    assert calls == {"amg": 1, "points": 1}
    retune(cache, replace(s, k2=3))  # new seeds: both
    assert calls == {"amg": 2, "points": 2}


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
