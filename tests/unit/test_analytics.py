"""Failure classification, best origin, stored-candidate ablations and bootstrap intervals
(core.analytics), on hand-made traces with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from core.analytics import bootstrap, failures
from core.analytics.records import sample_record, summarize
from core.analytics.runs import analyse_records, compare_records
from core.evaluator.evaluate import METHODS, evaluate_traces
from core.metrics import MetricAccumulator
from core.trace import Candidate, EvaluatorTrace, PipelineTrace

HW = (10, 10)


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros(HW, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


GT = box(0, 5, 0, 5)  # 25 px


def trace(cands, initial=None, scores=None, fell_back=False) -> PipelineTrace:
    """``cands``: [(origin, mask)], ids 0..; ``scores``: {id: score} → an evaluator ranking."""
    cs = [
        Candidate(id=i, origin=o, origin_rank=i, mask=m, sam_score=0.9 - 0.1 * i, area=int(m.sum()))
        for i, (o, m) in enumerate(cands)
    ]
    ev = None
    if scores is not None:
        from core.evaluator.grouping import rerank

        ev = EvaluatorTrace(
            backend="hand",
            model_id="hand",
            is_random=False,
            group_size=5,
            shuffle_seed=0,
            cot=False,
            groups=[],
            final_scores=scores,
            ranking=rerank(scores, [c.id for c in cs]),
            fell_back_to_initial=fell_back,
        )
    return PipelineTrace(
        question="q",
        image_hw=HW,
        preset="hand",
        model_ids={},
        is_random=False,
        settings={},
        initial_logits=None,
        initial_mask=box(0, 5, 0, 2) if initial is None else initial,  # IoU 10/25 = 0.4
        attention=None,
        seeds=None,
        graph=None,
        candidates=cs,
        evaluator=ev,
    )


def samples():
    """Three samples: fine (semantic best and ranked first), mis-ranked (amg best, ranked last),
    generator missed (nothing above 0.5)."""
    fine = trace(
        [("multimask", box(0, 5, 0, 3)), ("semantic", GT), ("amg", box(5, 10, 5, 10))],
        scores={0: 0.2, 1: 0.9, 2: 0.1},
    )
    misranked = trace(
        [("multimask", box(5, 10, 5, 10)), ("semantic", box(0, 5, 0, 1)), ("amg", GT)],
        scores={0: 0.8, 1: 0.5, 2: 0.1},
    )
    missed = trace(
        [("multimask", box(0, 2, 0, 2)), ("semantic", box(0, 5, 0, 2)), ("amg", box(8, 10, 8, 10))],
        scores={0: 0.1, 1: 0.3, 2: None},
    )
    items = [(fine, "reasoning"), (misranked, "reasoning"), (missed, "spatial")]
    return [sample_record(t, GT, None, cat, sid) for sid, (t, cat) in enumerate(items)], items


def test_classification_and_best_origin_known_answers():
    recs, _ = samples()
    assert [failures.classify(r) for r in recs] == [
        "fine",
        "evaluator_misranked",
        "generator_missed",
    ]
    cl = failures.classification(recs)
    assert cl["overall"] == {"generator_missed": 1, "evaluator_misranked": 1, "fine": 1}
    assert cl["per_category"]["spatial"] == {
        "generator_missed": 1,
        "evaluator_misranked": 0,
        "fine": 0,
    }
    assert cl["samples"] == {"generator_missed": [2], "evaluator_misranked": [1], "fine": [0]}
    # the threshold is a setting: at 0.3 the missed sample's oracle (10/25 = 0.4) is good enough
    # and its top-1 (the semantic 0.4 mask, score 0.3) too
    assert failures.classify(recs[2], 0.3) == "fine"
    with pytest.raises(ValueError, match="threshold"):
        failures.classify(recs[0], 1.5)
    assert [failures.best_origin(r) for r in recs] == ["semantic", "amg", "semantic"]
    o = failures.origins(recs)
    assert o["overall"] == {"multimask": 0, "semantic": 2, "amg": 1, "none": 0}
    assert o["samples"]["amg"] == [1]


def test_ablations_known_answers():
    recs, _ = samples()
    fine, misranked, missed = recs
    # without semantic, sample 0: oracle = multimask 15/25 = 0.6; top-1 = best-scored rest (id 0)
    w = failures.without_origin(fine, "semantic")
    assert w == {"oracle": (15, 25), "top1": (15, 25)}
    # without amg, sample 1: oracle = semantic 5/25; top-1 stays multimask (0/50)
    assert failures.without_origin(misranked, "amg") == {"oracle": (5, 25), "top1": (0, 50)}
    # without multimask, sample 1: top-1 becomes semantic (score 0.5), oracle stays amg
    assert failures.without_origin(misranked, "multimask") == {"oracle": (25, 25), "top1": (5, 25)}
    abl = failures.ablations(recs)
    assert set(abl) == {"multimask", "semantic", "amg"} and abl["amg"]["removed"] == 3
    sem = abl["semantic"]["oracle"]["overall"]
    # oracles without semantic: 0.6, 1.0, 4/25 (the multimask 2x2 box) → mean
    assert sem["giou"] == pytest.approx((15 / 25 + 25 / 25 + 4 / 25) / 3, abs=1e-5)
    assert sem["ciou"] == pytest.approx((15 + 25 + 4) / (25 + 25 + 25), abs=1e-9)


def test_ablation_of_a_fallen_back_sample_keeps_m_and_empty_when_nothing_left():
    t = trace([("amg", GT)], scores={0: None}, fell_back=True)
    r = sample_record(t, GT, None, "other", 7)
    assert r.counts["top1"] == r.counts["initial"] == (10, 25)
    assert failures.without_origin(r, "amg") == {"top1": (10, 25), "oracle": (0, 25)}
    assert failures.classify(r) == "evaluator_misranked"


def test_records_reproduce_eval_exactly():
    recs, items = samples()
    items = [(t, GT, None, cat) for t, cat in items]
    ev = evaluate_traces(items)
    for m in METHODS:
        assert summarize(recs, m) == ev[m]
    assert failures.coverage(recs, 3) == pytest.approx(
        [(1.0 + 0 + 0.4) / 3, (1.0 + 0.2 + 0.4) / 3, (1.0 + 1.0 + 0.4) / 3], abs=1e-5
    )


def _rows(n: int, seed: int = 3) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 400, n)
    i = (u * rng.random(n)).astype(int)
    return list(zip(i.tolist(), u.tolist(), strict=True))


def _direct(rows_fn, n: int, n_boot: int, seed: int):
    """Resample with the same generator, one replicate at a time, and sum each through
    MetricAccumulator: the definition the vectorised code must match."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    return [rows_fn(row) for row in idx]


def test_bootstrap_interval_matches_a_direct_computation():
    rows = _rows(40) + [(0, 0)]  # an empty-on-empty sample counts 1.0
    n, n_boot, seed = len(rows), 300, 11

    def stat(idx):
        acc = MetricAccumulator()
        for j in idx:
            acc.add_counts(*rows[j])
        o = acc.result()["overall"]
        return o["giou"], o["ciou"]

    vals = np.array(_direct(stat, n, n_boot, seed))
    got = bootstrap.interval(rows, n_boot=n_boot, seed=seed)
    assert got["giou_ci"] == pytest.approx(np.percentile(vals[:, 0], [2.5, 97.5]), abs=1e-12)
    assert got["ciou_ci"] == pytest.approx(np.percentile(vals[:, 1], [2.5, 97.5]), abs=1e-12)
    acc = MetricAccumulator()
    for r in rows:
        acc.add_counts(*r)
    assert (got["giou"], got["ciou"]) == (
        acc.result()["overall"]["giou"],
        acc.result()["overall"]["ciou"],
    )
    assert got["giou_ci"][0] < got["giou"] < got["giou_ci"][1]
    lisa = bootstrap.interval(rows, n_boot=n_boot, seed=seed, giou_average="lisa")
    assert lisa["giou_ci"][1] < got["giou_ci"][1]  # sum / (n + 1e-5) is a hair lower


def test_paired_bootstrap_matches_a_direct_computation():
    a, b = _rows(30, 1), _rows(30, 2)
    n_boot, seed = 200, 5

    def stat(idx):
        out = []
        for rows in (a, b):
            acc = MetricAccumulator()
            for j in idx:
                acc.add_counts(*rows[j])
            out.append(acc.result()["overall"])
        return out[0]["giou"] - out[1]["giou"], out[0]["ciou"] - out[1]["ciou"]

    vals = np.array(_direct(stat, 30, n_boot, seed))
    got = bootstrap.paired_difference(a, b, n_boot=n_boot, seed=seed)
    assert got["giou_ci"] == pytest.approx(np.percentile(vals[:, 0], [2.5, 97.5]), abs=1e-12)
    assert got["ciou_ci"] == pytest.approx(np.percentile(vals[:, 1], [2.5, 97.5]), abs=1e-12)
    assert got["giou_diff"] == pytest.approx(got["a"]["giou"] - got["b"]["giou"])
    # a run against itself: every resample's difference is exactly 0
    same = bootstrap.paired_difference(a, a, n_boot=50)
    assert same["giou_ci"] == [0.0, 0.0] and not bootstrap.excludes_zero(same["giou_ci"])
    with pytest.raises(ValueError, match="length"):
        bootstrap.paired_difference(a, b[:-1])


def test_compare_records_pairs_shared_samples_only():
    recs, items = samples()
    # run B: the same traces but sample 1 ranks its best (amg) first, and sample 2 is missing
    t1 = trace(
        [("multimask", box(5, 10, 5, 10)), ("semantic", box(0, 5, 0, 1)), ("amg", GT)],
        scores={0: 0.1, 1: 0.5, 2: 0.9},
    )
    b = [recs[0], sample_record(t1, GT, None, "reasoning", 1)]
    res = compare_records(recs, b, n_boot=100)
    assert res["shared"] == 2 and res["only_a"] == 1 and res["only_b"] == 0
    assert res["overall"]["giou_diff"] == pytest.approx(-0.5, abs=1e-5)
    assert res["changed"][0]["sample_id"] == 1 and res["changed"][0]["diff"] == pytest.approx(
        -1.0, abs=1e-5
    )
    assert set(res["per_category"]) == {"reasoning"}
    with pytest.raises(ValueError, match="method"):
        compare_records(recs, b, method="best")


def test_analyse_records_carries_everything():
    recs, _ = samples()
    res = analyse_records(recs, n_boot=50)
    assert set(res) >= {"classification", "origins", "ablations", "coverage", "intervals"}
    assert set(res["intervals"]) == set(METHODS)
    assert res["ablations"]["amg"]["intervals"]["oracle"]["n"] == 3


def test_doubt_measures_known_answers():
    from core.analytics import doubt

    recs, _ = samples()
    g = doubt.doubt_gt(recs)
    assert g == pytest.approx({0: 0.0, 1: 1.0, 2: 0.6}, abs=1e-5)
    assert doubt.doubt_order(g) == [1, 2, 0]
    # SAM scores fall with the id (0.9, 0.8, 0.7); sample 0 scores 0.2 / 0.9 / 0.1 → ranks
    # (2, 3, 1) vs (3, 2, 1): ρ = 0.5 → 0.25; sample 1 scores fall with the id too → ρ = 1 → 0;
    # sample 2 has two readable scores rising against SAM → ρ = −1 → 1
    s = doubt.doubt_sam(recs)
    assert s == pytest.approx({0: 0.25, 1: 0.0, 2: 1.0})
    a = {1: GT, 2: box(0, 5, 0, 2), 3: None}
    b = {1: GT, 2: GT, 3: np.zeros(HW, bool), 4: GT}
    assert doubt.doubt_runs(a, b) == pytest.approx({1: 0.0, 2: 0.6, 3: 0.0})
    votes = {
        5: {"ann": "accept", "bob": "reject"},
        6: {"ann": "accept"},
        7: dict.fromkeys("abc", "flag"),
    }
    votes[8] = {"a": "accept", "b": "accept", "c": "reject"}
    assert doubt.doubt_annotators(votes) == pytest.approx({5: 0.5, 6: 0.0, 7: 0.0, 8: 1 / 3})
    assert doubt.doubt_order({3: 0.5, 1: 0.5, 2: 0.9}) == [2, 1, 3]


def test_bootstrap_in_chunks_draws_the_same_resamples(monkeypatch):
    rows = _rows(37, 4)
    whole = bootstrap.interval(rows, n_boot=101, seed=9)
    pair = bootstrap.paired_difference(rows, _rows(37, 5), n_boot=101, seed=9)
    chunks = []
    real = bootstrap._stats

    def counted(*a):
        chunks.append(a[3].shape[0])
        return real(*a)

    monkeypatch.setattr(bootstrap, "CHUNK_CELLS", 37 * 7)  # 7 resamples a chunk
    monkeypatch.setattr(bootstrap, "_stats", counted)
    assert bootstrap.interval(rows, n_boot=101, seed=9) == whole
    assert bootstrap.paired_difference(rows, _rows(37, 5), n_boot=101, seed=9) == pair
    assert chunks[:15] == [7] * 14 + [3]  # 101 = 14 x 7 + 3: the interval's chunks
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap.interval(rows, n_boot=0)


def test_svg_ticks_are_round_numbers_printed_exactly():
    from core.analytics.svg import bars, nice_step

    assert nice_step(1.0) == (0.25, 2) and nice_step(0.052) == (0.02, 2)
    assert nice_step(0.004) == (0.001, 3) and nice_step(2.0) == (0.5, 1)
    text = bars(["a"], [("d", [0.005], [[0.0, 0.012]])], y_min=-0.02, y_max=0.032)
    assert ">0.02</text>" in text and ">-0.02</text>" in text and ">0.00</text>" in text
    assert ">0.01</text>" not in text  # no rounded label of an unround tick
