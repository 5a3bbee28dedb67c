"""Per-sample records of a run: what every analysis of :mod:`core.analytics` starts from.

A :class:`SampleRecord` holds, for one sample of one run, the (I, U) counts of each answer
:mod:`core.evaluator.evaluate` measures (``top1``, ``best_of_top3``, ``initial``, ``oracle``) and
of every candidate, with its origin, SAM's predicted IoU, the evaluator's score and its place in
the run's ranking. It is built by the same rules as :func:`core.evaluator.evaluate.evaluate_traces`
(the evaluator's ranking, stage-1 order without one, the initial mask M when no score was
readable; the oracle's ties go to the earlier candidate), so summing its counts with
:class:`core.metrics.MetricAccumulator` gives ``rea2seg eval``'s numbers exactly.

Masks are not kept: a record is a few numbers per candidate, so a whole run's records fit in
memory and every analysis (classification, ablations, bootstrap) runs on them without the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from core.evaluator.evaluate import METHODS, ranking_of
from core.evaluator.grouping import best_of_top_k
from core.metrics import IgnoreMode, MetricAccumulator, intersection_union, sample_iou
from core.trace import PipelineTrace


@dataclass(frozen=True)
class CandidateRecord:
    """One candidate: ``id`` and ``origin`` as in the trace, ``inter`` / ``union`` pixel counts
    against the reference, ``sam_score`` (SAM's predicted IoU), ``score`` (the evaluator's final
    score; ``None`` when unread or without stage 2) and ``rank`` (0-based place in the run's
    ranking, :func:`core.evaluator.evaluate.ranking_of`)."""

    id: int
    origin: str
    inter: int
    union: int
    sam_score: float
    score: float | None
    rank: int

    @property
    def iou(self) -> float:
        """LISA's per-sample IoU of this candidate (:func:`core.metrics.sample_iou`)."""
        return sample_iou(self.inter, self.union)


@dataclass(frozen=True)
class SampleRecord:
    """One sample of one run. ``counts[method] = (I, U)`` for each of
    :data:`core.evaluator.evaluate.METHODS`; ``candidates`` in stage-1 order; ``empty`` the
    (I, U) of an empty prediction (the answer when there is no candidate); ``initial`` is
    ``counts["initial"]``; ``fell_back``: no readable evaluator score, the answer is M;
    ``has_evaluator``: the trace has stage-2 output."""

    sample_id: int
    category: str
    counts: dict[str, tuple[int, int]]
    candidates: tuple[CandidateRecord, ...]
    empty: tuple[int, int]
    fell_back: bool = False
    has_evaluator: bool = False

    def iou(self, method: str) -> float:
        """Per-sample IoU of ``method`` (a key of ``counts``)."""
        return sample_iou(*self.counts[method])

    def ranked(self) -> list[CandidateRecord]:
        """The candidates in the run's ranking order, best first."""
        return sorted(self.candidates, key=lambda c: c.rank)

    def oracle_candidate(self) -> CandidateRecord | None:
        """The candidate with the highest true IoU (ties: the earlier in stage-1 order)."""
        if not self.candidates:
            return None
        return max(enumerate(self.candidates), key=lambda t: (t[1].iou, -t[0]))[1]


def sample_record(
    trace: PipelineTrace,
    gt: np.ndarray,
    ignore: np.ndarray | None,
    category: str,
    sample_id: int = -1,
    *,
    ignore_mode: IgnoreMode = "exclude",
    k: int = 3,
) -> SampleRecord:
    """The record of one trace measured against ``gt`` (bool (H, W) at the trace's image size;
    ``ignore`` bool (H, W) or ``None``), by :func:`core.evaluator.evaluate.evaluate_traces`'s
    rules."""
    rank = ranking_of(trace)
    place = {cid: i for i, cid in enumerate(rank)}
    ev = trace.evaluator
    scores = ev.final_scores if ev is not None else {}
    cands = []
    for c in trace.candidates:
        i, u = intersection_union(c.mask, gt, ignore, ignore_mode)
        sc = scores.get(c.id)
        cands.append(
            CandidateRecord(
                c.id,
                str(c.origin),
                i,
                u,
                float(c.sam_score),
                None if sc is None else float(sc),
                place[c.id],
            )
        )
    empty = intersection_union(np.zeros(gt.shape, dtype=bool), gt, ignore, ignore_mode)
    initial = (
        empty
        if trace.initial_mask is None
        else intersection_union(trace.initial_mask, gt, ignore, ignore_mode)
    )
    by_id = {c.id: c for c in cands}
    fell_back = bool(ev is not None and ev.fell_back_to_initial)
    if fell_back:
        top1 = best3 = initial
    else:
        top1 = (by_id[rank[0]].inter, by_id[rank[0]].union) if rank else empty
        b = best_of_top_k(rank, {c.id: c.iou for c in cands}, k)
        best3 = (by_id[b].inter, by_id[b].union) if b is not None else empty
    rec = SampleRecord(
        int(sample_id),
        category,
        {},
        tuple(cands),
        empty,
        fell_back=fell_back,
        has_evaluator=ev is not None,
    )
    best = rec.oracle_candidate()
    oracle = (best.inter, best.union) if best is not None else empty
    rec.counts.update(top1=top1, best_of_top3=best3, initial=initial, oracle=oracle)
    return rec


def answer_mask(trace: PipelineTrace) -> np.ndarray | None:
    """The run's answer (top-1) for one trace, by the rules of :func:`sample_record`: the
    initial mask M when the evaluator read no score, else the first ranked candidate's mask;
    ``None`` when there is no candidate."""
    if trace.evaluator is not None and trace.evaluator.fell_back_to_initial:
        return trace.initial_mask
    rank = ranking_of(trace)
    if not rank:
        return None
    return next(c.mask for c in trace.candidates if c.id == rank[0])


def run_records(
    store,
    run_id: int,
    *,
    against: str = "gt",
    ignore_mode: IgnoreMode = "exclude",
    k: int = 3,
) -> list[SampleRecord]:
    """The records of every finished sample of run ``run_id`` that has a reference mask
    (``against``: ``"gt"`` or ``"reviewed"``, as ``rea2seg eval --against``); reads only."""
    from core.store import repo

    with store.session(write=False) as s:
        repo.get_run(s, run_id)  # unknown run: NotFoundError naming it
        ids = sorted(repo.finished_sample_ids(s, run_id))
    out = []
    for sid in ids:
        # one sample at a time, so its masks are freed as we go
        for trace, ref, ign, cat in _run_items_for(store, run_id, sid, against):
            out.append(sample_record(trace, ref, ign, cat, sid, ignore_mode=ignore_mode, k=k))
    return out


def _run_items_for(store, run_id: int, sample_id: int, against: str) -> Iterator[tuple]:
    from core.store import repo

    with store.session(write=False) as s:
        trace = repo.load_trace(s, run_id, sample_id)
        ref = repo.reference_mask(s, sample_id, against)
        ign = repo.ignore_mask(s, sample_id)
        cat = repo.get_sample(s, sample_id).category
    if trace is not None and ref.mask is not None:
        yield trace, ref.mask, ign, cat


def summarize(
    records: Iterable[SampleRecord], method: str, giou_average: str = "mean"
) -> dict[str, object]:
    """``{"overall": {giou, ciou, n}, "per_category": {…}}`` of ``method`` over ``records``,
    through :class:`core.metrics.MetricAccumulator` (so LISA's rules apply exactly)."""
    acc = MetricAccumulator(giou_average=giou_average)  # type: ignore[arg-type]
    for r in records:
        acc.add_counts(*r.counts[method], r.category)
    return acc.result()


__all__ = [
    "METHODS",
    "CandidateRecord",
    "answer_mask",
    "SampleRecord",
    "run_records",
    "sample_record",
    "summarize",
]
