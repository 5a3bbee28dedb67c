"""The what-if panel's layer / head lists and true-IoU summary (core.pipeline.tune), no models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.pipeline.tune import best_true_iou, candidate_ious, format_indices, parse_indices
from core.trace import Candidate, PipelineTrace


@given(st.sets(st.integers(0, 80), max_size=20))
def test_index_lists_round_trip(values):
    text = format_indices(values)
    assert parse_indices(text) == (tuple(sorted(values)) or None)


@given(st.text(max_size=12))
def test_any_text_parses_or_says_what_is_wrong(text):
    try:
        out = parse_indices(text, "heads")
    except ValueError as exc:
        assert str(exc).startswith("heads: ") and "\n" not in str(exc)
    else:
        assert out is None or (list(out) == sorted(set(out)) and min(out) >= 0)


def test_index_lists_as_typed():
    assert parse_indices(" 14-16, 3 ;20") == (3, 14, 15, 16, 20)
    assert parse_indices("  ") is None and format_indices(None) == ""
    with pytest.raises(ValueError, match="layers: '5-2'"):
        parse_indices("5-2")
    with pytest.raises(ValueError, match="layers: '-1'"):
        parse_indices("-1")


def _trace(masks):
    cands = [Candidate(i, "amg", i, m, 0.5) for i, m in enumerate(masks)]
    return PipelineTrace(
        "q", masks[0].shape, "p", {}, True, {}, None, None, None, None, None, cands
    )


def test_true_ious_and_the_best_candidate():
    yy, xx = np.mgrid[:10, :10]
    gt = (yy < 5) & (xx < 5)
    half = (yy < 5) & (xx < 10)
    trace = _trace([half, gt.copy(), ~gt])
    ious = candidate_ious(trace, gt)
    assert ious[0] == pytest.approx(0.5, abs=1e-4) and ious[1] == pytest.approx(1.0, abs=1e-4)
    assert ious[2] == 0.0
    assert best_true_iou(trace, gt)[0] == 1
    ignore = np.zeros_like(gt)
    ignore[:, 5:] = True  # the right half ignored: candidate 0 is then as good as the ground truth
    assert candidate_ious(trace, gt, ignore)[0] == pytest.approx(1.0, abs=1e-4)
    assert best_true_iou(trace, gt, ignore)[0] == 0  # the first on ties
    empty = PipelineTrace("q", (10, 10), "p", {}, True, {}, None, None, None, None, None, [])
    assert best_true_iou(empty, gt) is None


def test_decoded_masks_pack_and_refilter_like_the_generator_would():
    from core.models.base import AmgMask
    from core.pipeline.tune_amg import DecodedMasks, mask_box_xyxy, refilter

    rng = np.random.default_rng(1)
    masks = [
        AmgMask(rng.random((5, 7)) > 0.5, float(np.float32(s)), float(np.float32(t)), i)
        for i, (s, t) in enumerate([(0.9, 0.95), (0.8, 0.5), (0.95, 0.99), (0.3, 0.9)])
    ]
    boxes = np.array([mask_box_xyxy(m.mask) for m in masks], np.float32)
    dec = DecodedMasks.pack(masks, boxes, (5, 7))
    assert dec.packed.shape == (4, 5)  # 35 pixels in 5 bytes
    for args in ((0.0, 0.0, 1.0), (0.85, 0.0, 1.0), (0.0, 0.9, 0.2), (0.5, 0.6, 0.0)):
        a, b = dec.refilter(*args), refilter(masks, boxes, *args)
        assert [m.seed_index for m in a] == [m.seed_index for m in b]
        assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a, b, strict=True))
    assert [m.seed_index for m in dec.refilter(0.85, 0.0, 1.0)] == [2, 0]  # best first
    assert mask_box_xyxy(np.zeros((3, 3), bool)) == (0.0, 0.0, 0.0, 0.0)
