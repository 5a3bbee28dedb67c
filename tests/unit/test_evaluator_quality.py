"""Evaluator quality maths (core.evaluator.quality): MAE, Kendall's τ-b, position bias, and the
assessment loop with a scripted evaluator. Known answers by hand; scipy as an oracle if present."""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluator.base import GroupResult
from core.evaluator.quality import (
    HeldOutQuestion,
    assess_evaluator,
    format_quality,
    kendall_tau,
    mae,
    position_bias,
)


def test_mae_known_answer():
    assert mae([0.1, 0.5, 1.0], [0.0, 0.5, 0.5]) == pytest.approx(0.2)
    assert mae([], []) is None
    with pytest.raises(ValueError):
        mae([1.0], [1.0, 2.0])


def test_kendall_tau_known_answers():
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swapped pair of 6: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(4 / 6)
    # tau-b with a tie in y: pairs 6, tied in y 1, C - D = 5 -> 5 / sqrt(6 * 5)
    assert kendall_tau([1, 2, 3, 4], [1, 1, 3, 4]) == pytest.approx(5 / np.sqrt(30))
    assert kendall_tau([1], [1]) is None and kendall_tau([1, 1], [1, 2]) is None


def test_kendall_tau_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(0, 5, 9).astype(float)
        y = rng.integers(0, 5, 9).astype(float)
        ref = stats.kendalltau(x, y).statistic
        got = kendall_tau(x, y)
        assert (got is None and np.isnan(ref)) or got == pytest.approx(ref)


def test_position_bias_of_a_stable_and_an_unstable_evaluator():
    stable = position_bias([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1], [0.9, 0.5, 0.1]])
    assert stable == pytest.approx(
        {"kendall_tau": 1.0, "score_spread": 0.0, "top1_agreement": 1.0, "pairs": 3}
    )
    flip = position_bias([[0.9, 0.5, 0.1], [0.1, 0.5, 0.9]])
    assert flip["kendall_tau"] == pytest.approx(-1.0)
    # per candidate std over the two repeats: 0.4, 0, 0.4 -> mean 0.8 / 3
    assert flip["score_spread"] == pytest.approx(0.8 / 3)
    assert flip["top1_agreement"] == pytest.approx(0.5)
    # unreadable scores are left out of the pair, never read as 0
    part = position_bias([[0.9, None, 0.1], [0.8, 0.3, 0.2]])
    assert part["kendall_tau"] == pytest.approx(1.0) and part["pairs"] == 1


class ScriptedEvaluator:
    """Scores each mask by a function of the mask and its slot in the group."""

    name = "scripted"

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def score_groups(self, image, question, groups, cot):
        self.calls += 1
        return [
            GroupResult([self.fn(m, k) for k, m in enumerate(g)], None, "", "", None, 0.0)
            for g in groups
        ]


def _questions(n=4, k=7):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        ious = list(rng.random(k))
        masks = [np.full((4, 4), v, dtype=float) for v in ious]  # the mask carries its IoU
        out.append(
            HeldOutQuestion("q", np.zeros((4, 4, 3), np.uint8), masks, ious, {"initial_iou": 0.25})
        )
    return out


def test_a_perfect_evaluator_scores_perfectly_and_has_no_position_bias():
    qs = _questions()
    ev = ScriptedEvaluator(lambda m, k: float(m[0, 0]))
    res = assess_evaluator(ev, qs, repeats=3)
    assert res["spearman"] == pytest.approx(1.0) and res["pearson"] == pytest.approx(1.0)
    assert res["mae"] == pytest.approx(0.0) and res["unscored"] == 0
    assert res["giou"]["top1"] == pytest.approx(res["giou"]["oracle"])
    assert res["giou"]["initial"] == pytest.approx(0.25)
    pb = res["position_bias"]
    assert pb["kendall_tau"] == pytest.approx(1.0) and pb["score_spread"] == pytest.approx(0.0)
    assert len(res["points"]) == 28 and ev.calls == 4 * 3
    assert "position bias over 3 regroupings" in format_quality(res)


def test_a_position_only_evaluator_shows_position_bias():
    qs = _questions()
    ev = ScriptedEvaluator(lambda m, k: 1.0 - 0.2 * k)  # scores the slot, not the mask
    res = assess_evaluator(ev, qs, repeats=4)
    pb = res["position_bias"]
    assert pb["kendall_tau"] < 0.6 and pb["score_spread"] > 0.05
    assert pb["top1_agreement"] < 1.0


def test_unreadable_scores_are_counted_not_zero():
    qs = _questions(n=2)
    ev = ScriptedEvaluator(lambda m, k: None)
    res = assess_evaluator(ev, qs, repeats=1)
    assert res["unscored"] == 14 and res["spearman"] is None and res["no_pick"] == 2
