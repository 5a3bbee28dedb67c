"""A review queue ordered by doubt: each sample gets a disagreement in [0, 1], and the list is
ordered most doubtful first (ties by sample id), so annotators spend their time where the
benchmark or the method is most likely wrong. Not from the paper; each measure is one setting of
:data:`DOUBT_KINDS`:

- ``gt`` — the evaluator's pick vs the ground truth: ``1 − IoU(top-1, reference)``;
- ``sam`` — the evaluator vs SAM: ``(1 − ρ) / 2`` with ρ Spearman's rank correlation between the
  evaluator's scores and SAM's predicted IoUs over the candidates with a readable score
  (0 with fewer than two such candidates or a constant score: no evidence either way);
- ``runs`` — two runs' answers: ``1 − IoU(answer A, answer B)`` (mask IoU, two empty answers
  agree), over the samples both runs have;
- ``annotators`` — two or more annotators' latest decisions (accept / reject / flag):
  ``1 − (votes of the most common decision) / (annotators)``; 0 with fewer than two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from core.analytics.records import SampleRecord, answer_mask
from core.evaluator.evaluate import spearman
from core.masks import mask_iou

DOUBT_KINDS = ("gt", "sam", "runs", "annotators")
DOUBT_LABELS = {
    "gt": "evaluator pick vs ground truth",
    "sam": "evaluator vs SAM scores",
    "runs": "two runs' answers",
    "annotators": "two annotators' decisions",
}


def doubt_gt(records: Sequence[SampleRecord]) -> dict[int, float]:
    """``{sample id: 1 − top-1 IoU}``."""
    return {r.sample_id: 1.0 - min(r.iou("top1"), 1.0) for r in records}


def doubt_sam(records: Sequence[SampleRecord]) -> dict[int, float]:
    """``{sample id: (1 − ρ(evaluator, SAM)) / 2}`` (module docstring)."""
    out = {}
    for r in records:
        scored = [c for c in r.candidates if c.score is not None]
        rho = spearman(
            np.array([c.score for c in scored], dtype=float),
            np.array([c.sam_score for c in scored], dtype=float),
        )
        out[r.sample_id] = 0.0 if rho is None else (1.0 - rho) / 2.0
    return out


def answers_iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Mask IoU of two answers; ``None`` is an empty answer; two empty answers agree (1.0)."""
    ea = a is None or not np.any(a)
    eb = b is None or not np.any(b)
    if ea and eb:
        return 1.0
    if ea or eb:
        return 0.0
    return float(mask_iou(a, b))


def doubt_runs(
    answers_a: Mapping[int, np.ndarray | None], answers_b: Mapping[int, np.ndarray | None]
) -> dict[int, float]:
    """``{sample id: 1 − IoU(answer A, answer B)}`` over the ids both mappings hold."""
    return {
        sid: 1.0 - answers_iou(answers_a[sid], answers_b[sid])
        for sid in sorted(set(answers_a) & set(answers_b))
    }


def doubt_annotators(decisions: Mapping[int, Mapping[str, str]]) -> dict[int, float]:
    """``{sample id: 1 − majority share}`` of each sample's users' latest decisions."""
    out = {}
    for sid, d in decisions.items():
        votes = list(d.values())
        out[int(sid)] = (
            0.0 if len(votes) < 2 else 1.0 - Counter(votes).most_common(1)[0][1] / len(votes)
        )
    return out


def doubt_order(scores: Mapping[int, float]) -> list[int]:
    """Sample ids, most doubtful first; ties by ascending id."""
    return sorted(scores, key=lambda sid: (-scores[sid], sid))


def run_answers(store, run_id: int) -> dict[int, np.ndarray | None]:
    """``{sample id: the run's answer mask}`` of every finished sample (reads only)."""
    from core.store import repo

    with store.session(write=False) as s:
        repo.get_run(s, run_id)
        ids = sorted(repo.finished_sample_ids(s, run_id))
    out = {}
    for sid in ids:
        with store.session(write=False) as s:
            trace = repo.load_trace(s, run_id, sid)
        if trace is not None:
            out[sid] = answer_mask(trace)
    return out


def doubt_scores(
    store,
    kind: str,
    run_id: int | None = None,
    run_b: int | None = None,
    *,
    against: str = "gt",
) -> dict[int, float]:
    """The doubt of ``kind`` (:data:`DOUBT_KINDS`) for the samples it is defined on; ``gt`` and
    ``sam`` need ``run_id``, ``runs`` both runs, ``annotators`` neither. Reads only."""
    if kind not in DOUBT_KINDS:
        raise ValueError(f"unknown doubt {kind!r}; use one of {list(DOUBT_KINDS)}")
    if kind == "annotators":
        from core.benchmark.agreement import latest_decisions

        return doubt_annotators(store.run(lambda s: latest_decisions(s), write=False))
    if run_id is None:
        raise ValueError(f"doubt {kind!r} needs a run")
    if kind == "runs":
        if run_b is None or run_b == run_id:
            raise ValueError("doubt 'runs' needs a second, different run")
        return doubt_runs(run_answers(store, run_id), run_answers(store, run_b))
    from core.analytics.records import run_records

    records = run_records(store, run_id, against=against)
    return doubt_gt(records) if kind == "gt" else doubt_sam(records)
