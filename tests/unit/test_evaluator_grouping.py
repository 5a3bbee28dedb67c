"""Grouping, padding, score pooling, reranking and top-K (§4.3), and the stage-2 runner."""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluator.base import GroupResult
from core.evaluator.grouping import (
    PlannedGroup,
    aggregate_scores,
    best_of_top_k,
    make_groups,
    rerank,
    top_k,
)
from core.trace import Candidate, PipelineTrace


def test_groups_cover_every_candidate_once_and_are_reproducible():
    ids = list(range(100, 113))
    g = make_groups(ids, 5, seed=3)
    assert [len(x.candidate_ids) for x in g] == [5, 5, 5] and [x.padded for x in g] == [0, 0, 2]
    own = [c for x in g for c in x.own_ids]
    assert sorted(own) == ids  # every candidate scored by exactly one group
    pad = g[-1].candidate_ids[-2:]
    assert set(pad) <= set(
        g[0].candidate_ids + g[1].candidate_ids
    )  # padding: real, earlier candidates
    assert len(set(g[-1].candidate_ids)) == 5  # no mask twice in one group
    assert g == make_groups(ids, 5, seed=3)
    assert g != make_groups(ids, 5, seed=4)
    assert make_groups(ids, 5, seed=[3, 7]) == make_groups(ids, 5, seed=[3, 7])


def test_group_shapes_known_answers():
    assert make_groups([], 5) == []
    assert [len(x.candidate_ids) for x in make_groups(range(15), 5)] == [
        5,
        5,
        5,
    ]  # the paper's 15 → 3 × 5
    assert [x.padded for x in make_groups(range(15), 5)] == [0, 0, 0]
    small = make_groups([7, 8, 9], 5)  # fewer than s: nothing to pad from
    assert len(small) == 1 and sorted(small[0].candidate_ids) == [7, 8, 9] and small[0].padded == 0
    plain = make_groups(range(11), 5, pad_last=False)
    assert [len(x.candidate_ids) for x in plain] == [5, 5, 1] and plain[-1].padded == 0
    singles = make_groups([1, 2], 1, seed=5)
    assert sorted(x.candidate_ids[0] for x in singles) == [1, 2] and all(
        x.padded == 0 for x in singles
    )
    with pytest.raises(ValueError, match="group_size"):
        make_groups([1], 0)
    with pytest.raises(ValueError, match="unique"):
        make_groups([1, 1], 5)


def test_shuffle_is_a_permutation_from_the_seed():
    g = make_groups(list(range(10)), 10, seed=0)[0].candidate_ids
    assert g == [int(i) for i in np.random.default_rng(0).permutation(10)]


def test_aggregate_uses_each_candidates_own_slot_only():
    groups = [PlannedGroup([4, 1]), PlannedGroup([2, 4], padded=1)]
    scores = aggregate_scores(groups, [[0.3, None], [0.8, 0.99]])
    assert scores == {4: 0.3, 1: None, 2: 0.8}  # the padded 0.99 for candidate 4 is not used
    with pytest.raises(ValueError):
        aggregate_scores(groups, [[0.3, None]])
    with pytest.raises(ValueError):
        aggregate_scores(groups, [[0.3], [0.8, 0.1]])


def test_rerank_score_then_stage1_order_and_unreadable_last():
    scores = {4: 0.5, 1: 0.9, 7: None, 2: 0.5, 0: None, 3: 0.95, 5: 0.0}
    assert rerank(scores) == [3, 1, 2, 4, 5, 0, 7]  # ties by id when no order is given
    order = [7, 4, 2, 0, 1, 3, 5]  # stage-1 order breaks ties, also among the unreadable
    assert rerank(scores, order) == [3, 1, 4, 2, 5, 7, 0]
    assert rerank({9: None, 8: 0.0}) == [8, 9]  # a real 0 beats an unreadable score
    assert rerank({}) == []


def test_top_k_and_best_of_top_k():
    ranking = [3, 1, 2, 4]
    assert top_k(ranking, 1) == [3] and top_k(ranking, 3) == [3, 1, 2] and top_k(ranking, 0) == []
    iou = {3: 0.2, 1: 0.7, 2: 0.7, 4: 0.99}
    assert (
        best_of_top_k(ranking, iou, 3) == 1
    )  # 4 is better but not in the top 3; tie → better rank
    assert best_of_top_k([], iou, 3) is None


# -- the stage-2 runner ---------------------------------------------------------------------


class AreaEvaluator:
    """Scores a mask by a table of its area; records what it was asked."""

    name, backend, is_random = "area-table", "test", False

    def __init__(self, table):
        self.table = table
        self.calls = []

    def score_groups(self, image, question, groups, cot):
        self.calls.append(("batch", len(groups)))
        return [self._r(g) for g in groups]

    def score_group(self, image, question, masks, cot):
        self.calls.append(("one", 1))
        return self._r(masks)

    def _r(self, masks):
        scores = [self.table.get(int(m.sum())) for m in masks]
        err = None if all(s is not None for s in scores) else "no score for some masks"
        return GroupResult(scores, "thinking", "raw", "prompt", err, 0.01)


def _trace(areas, hw=(10, 20)):
    cands = []
    for i, a in enumerate(areas):
        m = np.zeros(hw, bool)
        m.flat[:a] = True
        cands.append(Candidate(10 + i, "amg", i, m, 0.5))
    return PipelineTrace("which?", hw, "test", {}, False, {}, None, None, None, None, None, cands)


def test_run_stage2_ranks_records_and_round_trips():
    from core.evaluator.stage2 import run_stage2

    tr = _trace([1, 2, 3, 4, 5, 6, 7])
    ev_model = AreaEvaluator({1: 0.1, 2: 0.9, 3: None, 4: 0.5, 5: 0.9, 6: 0.0, 7: 0.3})
    seen = []
    ev = run_stage2(
        tr,
        np.zeros((10, 20, 3), np.uint8),
        ev_model,
        group_size=5,
        shuffle_seed=1,
        progress=lambda step, f: seen.append((step, f)),
    )
    assert tr.evaluator is ev and ev.group_size == 5 and ev.shuffle_seed == 1 and ev.cot is True
    assert ev_model.calls == [("batch", 2)]
    assert [len(g.candidate_ids) for g in ev.groups] == [5, 5] and ev.groups[1].padded == 3
    assert ev.final_scores == {10: 0.1, 11: 0.9, 12: None, 13: 0.5, 14: 0.9, 15: 0.0, 16: 0.3}
    # 0.9 tie between 11 and 14 → stage-1 order; unreadable 12 last
    assert ev.ranking == [11, 14, 13, 16, 10, 15, 12]
    assert seen[0] == ("evaluator", 0.0) and seen[-1] == ("evaluator", 1.0)
    failed = [x for x in ev.groups if x.parse_error]
    assert failed and all(12 in x.candidate_ids for x in failed) and failed[0].cot == "thinking"
    padded_12 = [x for x in ev.groups if 12 in x.candidate_ids[len(x.candidate_ids) - x.padded :]]
    assert padded_12 and padded_12[0].scores[padded_12[0].candidate_ids.index(12)] is None
    back = PipelineTrace.from_json(tr.to_json())
    assert back.evaluator.ranking == ev.ranking and back.evaluator.groups[1].padded == 3
    assert back.evaluator.final_scores == ev.final_scores


def test_run_stage2_group_by_group_can_be_cancelled():
    from core.evaluator.stage2 import Cancelled, run_stage2

    tr = _trace([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    model = AreaEvaluator({a: a / 20 for a in range(1, 12)})
    calls = {"n": 0}

    def cancel_after_two_groups():
        calls["n"] += 1
        return len(model.calls) >= 2

    with pytest.raises(Cancelled):
        run_stage2(
            tr,
            np.zeros((10, 20, 3), np.uint8),
            model,
            batch=False,
            should_cancel=cancel_after_two_groups,
        )
    assert tr.evaluator is None and len(model.calls) == 2  # stopped between groups, trace untouched
    ev = run_stage2(
        tr,
        np.zeros((10, 20, 3), np.uint8),
        AreaEvaluator({a: a / 20 for a in range(1, 12)}),
        batch=False,
        cot=False,
    )
    assert ev.ranking == [20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10] and ev.cot is False


def test_run_stage2_rejects_a_mismatched_image_and_a_short_answer():
    from core.evaluator.stage2 import run_stage2

    tr = _trace([1, 2])
    with pytest.raises(ValueError, match="image"):
        run_stage2(tr, np.zeros((5, 5, 3), np.uint8), AreaEvaluator({}))

    class Short(AreaEvaluator):
        def score_groups(self, image, question, groups, cot):
            return [GroupResult([0.5], None, "", "", None)]

    with pytest.raises(RuntimeError, match="scores for a group"):
        run_stage2(tr, np.zeros((10, 20, 3), np.uint8), Short({}))


def test_run_stage2_without_candidates():
    from core.evaluator.stage2 import run_stage2

    tr = _trace([])
    ev = run_stage2(tr, np.zeros((10, 20, 3), np.uint8), AreaEvaluator({}))
    assert ev.groups == [] and ev.ranking == [] and ev.final_scores == {}
