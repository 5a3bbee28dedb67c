"""Where each failure comes from, which origin finds the best candidate, and the paper's origin
ablations (§5.3, Table 3) recomputed from stored candidates — all from
:class:`~core.analytics.records.SampleRecord` lists, pure and headless.

**Classification** of a sample (threshold :data:`FAILURE_IOU`, not from the paper):

- ``generator_missed``: the oracle IoU (best candidate) is below the threshold — no candidate
  stage 1 produced was good enough, whatever stage 2 did;
- ``evaluator_misranked``: the oracle reaches the threshold but the answer (top-1) does not —
  a good candidate existed and stage 2 did not pick it;
- ``fine``: the answer reaches the threshold.

**Best origin**: the origin (``multimask`` / ``semantic`` / ``amg`` / any other the trace
records, e.g. ``concept``) of the oracle candidate; ``none`` for a sample without candidates.

**Ablations without re-running** (the paper's "w/o AMG masks / semantic masks / multimask
outputs"): for each origin, the candidates of that origin are removed and

- the oracle is the best true IoU among the rest;
- top-1 is the **best-scored remaining candidate**: the first of the rest in the run's ranking
  (the evaluator's scores, best first; stage-1 order without stage 2). A real re-run without the
  origin would group and score the rest anew, so its top-1 can differ; the oracle cannot (with
  the paper's settings, without de-duplication, removing one origin changes no other origin's
  masks — ``tests/unit/test_analytics.py`` checks this against re-running stage 1).
  A sample whose evaluator read no score keeps M as its answer, as in the run.

The coverage curve: for n = 1..N, the mean over samples of the best true IoU among the first n
ranked candidates (as :func:`core.evaluator.evaluate.coverage_curve`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from core.analytics.records import SampleRecord
from core.metrics import MetricAccumulator

FAILURE_IOU = 0.5
"""IoU threshold of the classification (not from the paper: the usual "a hit" threshold of
detection and referring segmentation). ``rea2seg eval --failure-iou`` overrides it."""

CLASSES = ("generator_missed", "evaluator_misranked", "fine")
CLASS_LABELS = {
    "generator_missed": "generator missed",
    "evaluator_misranked": "evaluator mis-ranked",
    "fine": "fine",
}
ORIGINS = ("multimask", "semantic", "amg")
"""The paper's candidate origins (§4.2); others a trace records are reported as they come."""


def classify(rec: SampleRecord, threshold: float = FAILURE_IOU) -> str:
    """The class of one sample (module docstring)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"failure threshold must be in [0, 1], got {threshold}")
    if rec.iou("oracle") < threshold:
        return "generator_missed"
    if rec.iou("top1") < threshold:
        return "evaluator_misranked"
    return "fine"


def best_origin(rec: SampleRecord) -> str:
    """The origin of the oracle candidate; ``"none"`` without candidates."""
    best = rec.oracle_candidate()
    return "none" if best is None else best.origin


def _by_category(records: Sequence[SampleRecord], key) -> dict[str, Any]:
    cats = sorted({r.category for r in records})
    return {
        "overall": key(records),
        "per_category": {c: key([r for r in records if r.category == c]) for c in cats},
    }


def classification(
    records: Sequence[SampleRecord], threshold: float = FAILURE_IOU
) -> dict[str, Any]:
    """``{"threshold", "overall": {class: n}, "per_category": {cat: {class: n}},
    "samples": {class: [sample ids]}}``."""
    labels = {r.sample_id: classify(r, threshold) for r in records}

    def count(rs: Sequence[SampleRecord]) -> dict[str, int]:
        c = Counter(labels[r.sample_id] for r in rs)
        return {k: int(c.get(k, 0)) for k in CLASSES}

    out = _by_category(records, count)
    out["threshold"] = float(threshold)
    out["samples"] = {k: sorted(s for s, v in labels.items() if v == k) for k in CLASSES}
    return out


def origin_names(records: Iterable[SampleRecord]) -> list[str]:
    """The paper's origins, then any other origin the records hold, in first-seen order."""
    extra: list[str] = []
    for r in records:
        for c in r.candidates:
            if c.origin not in ORIGINS and c.origin not in extra:
                extra.append(c.origin)
    return [*ORIGINS, *extra]


def origins(records: Sequence[SampleRecord]) -> dict[str, Any]:
    """``{"overall": {origin: n}, "per_category": {…}, "samples": {origin: [ids]}}``: which
    origin found each sample's best candidate (``none``: no candidate)."""
    names = [*origin_names(records), "none"]
    best = {r.sample_id: best_origin(r) for r in records}

    def count(rs: Sequence[SampleRecord]) -> dict[str, int]:
        c = Counter(best[r.sample_id] for r in rs)
        return {k: int(c.get(k, 0)) for k in names}

    out = _by_category(records, count)
    out["samples"] = {k: sorted(s for s, v in best.items() if v == k) for k in names}
    return out


def without_origin(rec: SampleRecord, origin: str) -> dict[str, tuple[int, int]]:
    """``{"top1": (I, U), "oracle": (I, U)}`` of one sample with ``origin``'s candidates removed
    (module docstring); the empty prediction when no candidate is left."""
    rest = [c for c in rec.candidates if c.origin != origin]
    if rest:
        best = max(enumerate(rest), key=lambda t: (t[1].iou, -t[0]))[1]
        oracle = (best.inter, best.union)
        first = min(rest, key=lambda c: c.rank)
        top1 = (first.inter, first.union)
    else:
        oracle = top1 = rec.empty
    if rec.fell_back:
        top1 = rec.counts["initial"]
    return {"top1": top1, "oracle": oracle}


def ablations(
    records: Sequence[SampleRecord], giou_average: str = "mean"
) -> dict[str, dict[str, Any]]:
    """``{origin: {"top1": {overall, per_category}, "oracle": {…}, "removed": n}}`` for each
    origin the records hold (:func:`origin_names`): the figures without that origin's candidates.
    ``removed`` counts the candidates taken out."""
    out: dict[str, dict[str, Any]] = {}
    for origin in origin_names(records):
        accs = {m: MetricAccumulator(giou_average=giou_average) for m in ("top1", "oracle")}  # type: ignore[arg-type]
        removed = 0
        for r in records:
            removed += sum(c.origin == origin for c in r.candidates)
            for m, iu in without_origin(r, origin).items():
                accs[m].add_counts(*iu, r.category)
        out[origin] = {m: a.result() for m, a in accs.items()}
        out[origin]["removed"] = removed
    return out


def coverage(records: Sequence[SampleRecord], max_n: int = 15) -> list[float]:
    """Mean over samples of the best true IoU among the first n ranked candidates, n = 1..max_n
    (0 for a sample with no candidate yet at n)."""
    rows = []
    for r in records:
        ious = [c.iou for c in r.ranked()]
        rows.append([max(ious[:n]) if ious[:n] else 0.0 for n in range(1, max_n + 1)])
    return [float(v) for v in np.mean(rows, axis=0)] if rows else []
