"""An ask that keeps its stage-1 cache (prepare + retune) hands out the same partial results in
the same order and ends with the same trace as run_stage1 (§4.2); the 3 multimask candidates are
handed out right after the initial mask and keep their ids to the end."""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace

import numpy as np
import pytest

from core.pipeline.candidates import build_candidates
from core.pipeline.partial import CandidateReady, Stage1Done, partial_kind
from core.pipeline.settings import Stage1Settings
from core.pipeline.stage1 import multimask_candidates
from tests.unit.test_pipeline_stage1 import tiny_backend


def same(a, b) -> bool:
    """Deep equality of partial results (arrays exactly, dataclasses field by field)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, Stage1Done):
        return same_trace(a.trace, b.trace)
    if is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def same_trace(a, b) -> bool:
    da, db = a.to_dict(), b.to_dict()
    da.pop("timings"), db.pop("timings")
    return da == db


# ------------------------------------------------------------------ multimask first, no models
def _box(y0, y1, x0, x1, hw=(20, 30)):
    m = np.zeros(hw, bool)
    m[y0:y1, x0:x1] = True
    return m


def _item(mask, score=0.5):
    return {"mask": mask, "score": score, "stability": 0.9}


A, B = _box(2, 10, 2, 12), _box(12, 18, 15, 28)
A_NEAR = A.copy()
A_NEAR[9, 2] = False  # IoU with A just under 1


@pytest.mark.parametrize(
    ("multimask", "dedupe_iou", "disabled"),
    [
        ([A, B, A_NEAR], None, ()),
        ([A, B, A_NEAR], 0.9, ()),  # the near-duplicate dropped among the multimask masks
        ([A, np.zeros_like(A), B], 0.9, ()),  # an empty mask dropped
        ([A, B, A_NEAR], 0.9, ("multimask",)),
    ],
)
def test_the_multimask_candidates_are_the_final_lists_first_whatever_follows(
    multimask, dedupe_iou, disabled
):
    s = Stage1Settings(dedupe_iou=dedupe_iou, top_n=2, disabled_origins=disabled)
    items = [_item(m, 0.9 - i / 10) for i, m in enumerate(multimask)]
    later = [("semantic", [_item(A), _item(B), _item(_box(0, 5, 20, 30))])]
    later.append(
        ("amg", [_item(A_NEAR), _item(_box(5, 15, 5, 15)), _item(B), _item(_box(1, 3, 1, 3))])
    )
    early = multimask_candidates(items, s)
    groups = [("multimask", items), *later]
    final = build_candidates(
        [(o, it) for o, it in groups if o not in s.disabled_origins], s.dedupe_iou, {"amg": 2}
    )
    assert same(final[: len(early)], early)
    assert len(early) == (0 if disabled else 3 - (dedupe_iou is not None))
    assert all(c.origin != "multimask" for c in final[len(early) :])


# --------------------------------------------------------------------- tiny models, end to end
@pytest.fixture(scope="module", params=["tiny-random-lisa", "tiny-random-lens"])
def segmenter(request):
    from core.pipeline.cache import ModelCache

    return ModelCache(device="cpu").segmenter(request.param)


@pytest.fixture(scope="module")
def image():
    img = np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    img[10:30, 12:40] = (230, 40, 40)
    return img


def _defaults(seg):
    from core.models.config import preset_stage1
    from core.pipeline.settings import run_defaults

    return run_defaults(str(seg.sam.kind), bool(seg.is_random), **preset_stage1(seg.preset))


def _ask(seg, image, s, keep=None):
    from core.pipeline.ask import ask

    items: list[object] = []
    steps: list[tuple[str, float]] = []
    trace = ask(
        image,
        "the red part",
        seg,
        s,
        partial=items.append,
        progress=lambda st, f, _t: steps.append((st, round(f, 6))),
        stage1_cache=keep,
    )
    return trace, items, steps


SETTINGS = [
    {},
    {"dedupe_iou": 0.5, "top_n": 3},
    {"k2": 4, "k1": 6, "tau": 0.3},
    {"layers": (1, 2), "heads": (0, 1)},  # the heatmap: a subset of the layers kept
]


@pytest.mark.slow
@pytest.mark.parametrize("change", SETTINGS)
def test_an_ask_via_the_cache_hands_out_what_run_stage1_does(segmenter, image, change, monkeypatch):
    from core.pipeline.stage1 import STEPS
    from core.pipeline.tune import Stage1Cache, layer_count, retune

    s = replace(_defaults(segmenter), **change)
    calls = {"encode": 0}
    real = segmenter.prompt_model.encode

    def encode(*a, **k):
        calls["encode"] += 1
        return real(*a, **k)

    monkeypatch.setattr(segmenter.prompt_model, "encode", encode)
    plain, plain_items, plain_steps = _ask(segmenter, image, s)  # run_stage1
    kept: list[Stage1Cache] = []
    cached, cached_items, cached_steps = _ask(segmenter, image, s, kept.append)
    assert calls["encode"] == 2 and len(kept) == 1
    assert retune(kept[0], s).candidates and calls["encode"] == 2  # no forward to re-tune
    assert same_trace(cached, plain)
    assert [partial_kind(i) for i in cached_items] == [partial_kind(i) for i in plain_items]
    for a, b in zip(cached_items, plain_items, strict=True):
        assert same(a, b), partial_kind(a)
    assert cached_steps == plain_steps  # the same progress, step by step
    assert set(cached.timings) == set(plain.timings) == {*STEPS, "ask_total"}
    cache = kept[0]
    assert cache.question == "the red part" and cache.preset == segmenter.preset
    n = layer_count(segmenter.prompt_model)
    assert n is not None and cache.cached_layers == list(range(n))  # every layer, for What-if
    assert cache.sam is segmenter.sam and np.array_equal(cache.image_rgb, image)


@pytest.mark.slow
@pytest.mark.parametrize("via_cache", [False, True])
def test_the_multimask_candidates_come_right_after_the_initial_mask(segmenter, image, via_cache):
    s = replace(_defaults(segmenter), dedupe_iou=0.5)
    trace, items, _ = _ask(segmenter, image, s, (lambda c: None) if via_cache else None)
    kinds = [partial_kind(i) for i in items]
    cands = [i for i in items if isinstance(i, CandidateReady)]
    m = sum(c.origin == "multimask" for c in trace.candidates)
    n = len(trace.candidates)
    assert 1 <= m <= 3 and n > m
    assert kinds == ["heatmap", "initial", *["candidate"] * m, "seeds", "core",
                     *["candidate"] * (n - m), "stage1"]  # fmt: skip
    early, rest = cands[:m], cands[m:]
    assert all(c.candidate.origin == "multimask" and c.total is None for c in early)
    assert all(c.total == n for c in rest)
    # each candidate handed out once, in id order, exactly as the final trace holds it
    assert [c.index for c in cands] == [c.candidate.id for c in cands] == list(range(n))
    assert same([c.candidate for c in cands], trace.candidates)


@pytest.mark.slow
def test_an_ask_that_leaves_origins_out_keeps_its_cache_and_equals_a_plain_ask(segmenter, image):
    kept: list[object] = []
    s = replace(_defaults(segmenter), disabled_origins=("amg",))
    via, plain = _ask(segmenter, image, s, kept.append), _ask(segmenter, image, s)
    assert len(kept) == 1 and same_trace(via[0], plain[0])
    assert "amg" not in {c.origin for c in via[0].candidates}


@pytest.mark.slow
def test_an_ask_with_the_concept_origin_but_no_model_says_so_and_keeps_no_cache(segmenter, image):
    kept: list[object] = []
    s = replace(_defaults(segmenter), concept_origin=True)  # no concept_model
    with pytest.raises(ValueError, match="concept_origin needs concept_model"):
        _ask(segmenter, image, s, kept.append)
    assert kept == []


# ----------------------------------------------------- prepare + retune alone, both SAM kinds
@pytest.fixture(scope="module", params=["sam", "sam2"])
def backend(request):
    return tiny_backend(request.param)


@pytest.mark.slow
def test_prepare_and_retune_hand_out_run_stage1s_partials_for_any_settings(backend):
    from core.pipeline.stage1 import run_stage1
    from core.pipeline.tune import prepare_stage1, retune
    from tests.unit.test_pipeline_stage1 import HandPromptModel, red_image

    img = red_image()
    base = {"layers": None, "k1": 8, "k2": 4, "pred_iou_thresh": 0.0}
    base |= {"stability_score_thresh": 0.0, "dedupe_iou": 0.6}
    s = Stage1Settings.for_backbone(backend.kind, **base)
    first: list[object] = []
    cache = prepare_stage1(HandPromptModel(), backend, img, "q", s, partial=first.append)
    # decodes reused from the seed bank in other batches may differ in the last float bits;
    # this test is about what is handed out and when, so every seed set is decoded afresh
    cache.use_seed_bank = False
    assert [partial_kind(i) for i in first] == ["heatmap", "initial"]
    for change in ({}, {"k2": 3, "tau": 0.4}, {"dedupe_iou": None, "top_n": 2}):
        s2 = replace(s, **change)
        full: list[object] = []
        run_stage1(HandPromptModel(), backend, img, "q", s2, partial=full.append)
        tuned: list[object] = []
        retune(cache, s2, partial=tuned.append)
        assert same(first, full[:2])  # the heatmap and L depend on nothing changed here
        assert [partial_kind(i) for i in tuned] == [partial_kind(i) for i in full[2:]], change
        assert all(same(a, b) for a, b in zip(tuned, full[2:], strict=True)), change
