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
