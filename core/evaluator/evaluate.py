"""Evaluation of a run (§5, Tables 1–2): gIoU and cIoU, per SGDR category and overall, of

- ``top1`` — the evaluator's first-ranked candidate (the answer, K = 1);
- ``best_of_top3`` — the best candidate, by true IoU, among the evaluator's top three (the grey
  rows of Tables 1–2);
- ``initial`` — the stage-1 initial mask alone (``L > 0``), i.e. the segmenter without stage 2;
- ``oracle`` — the best candidate by true IoU (the ceiling the candidate set allows);

and how well the evaluator's scores track the true IoU: Pearson and Spearman correlation over
every candidate that got a score (candidates whose score could not be read are left out and
counted in ``unscored``), and their mean absolute error (MAE).

Metrics are LISA's (:mod:`core.metrics`): per-sample IoU ``I / (U + 1e-5)`` (1.0 for an empty
prediction on an empty ground truth), gIoU its mean (``giou_average="lisa"``: sum / (n + 1e-5),
LISA's distributed average), cIoU ``ΣI / (ΣU + 1e-10)``, ignore regions
excluded by default. The "true IoU" of a candidate is that per-sample IoU. The reference is
chosen by ``against`` (:func:`core.store.repo.reference_mask`): ``"gt"`` (default) the imported
ground truth, ``"reviewed"`` the reviewer's edited mask, falling back to the imported ground
truth for samples nobody edited (``reference`` in the result counts both); samples without a
reference or without a trace in the run are skipped.

A trace without evaluator output ranks its candidates in stage-1 order (multimask first), so
``top1`` is then SAM's first multimask output; ``with_evaluator`` counts the samples that had one.
When the evaluator gave no readable score for any candidate of a sample, its answer (``top1``
and ``best_of_top3``) is the initial mask M, and ``fell_back`` counts those samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from core.evaluator.grouping import best_of_top_k
from core.metrics import IgnoreMode, MetricAccumulator, intersection_union, sample_iou
from core.trace import PipelineTrace

METHODS = ("top1", "best_of_top3", "initial", "oracle")
LABELS = {
    "top1": "top-1",
    "best_of_top3": "best of top-3",
    "initial": "initial mask",
    "oracle": "oracle",
}


def ranking_of(trace: PipelineTrace) -> list[int]:
    """The evaluator's ranking when present, else the stage-1 candidate order."""
    ids = [c.id for c in trace.candidates]
    if trace.evaluator is not None and trace.evaluator.ranking:
        known = set(ids)
        ranked = [c for c in trace.evaluator.ranking if c in known]
        seen = set(ranked)
        return ranked + [c for c in ids if c not in seen]
    return ids


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r of two 1-D float arrays; ``None`` for fewer than 2 points or a constant input."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    xc, yc = x - x.mean(), y - y.mean()
    return float(np.dot(xc, yc) / np.sqrt(np.dot(xc, xc) * np.dot(yc, yc)))


def average_ranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks of ``v`` with ties given their average rank (as Spearman's rho needs)."""
    v = np.asarray(v, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    sv = v[order]
    ranks = np.empty(len(v), dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(sv)) + 1]
    ends = np.r_[starts[1:], len(v)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho: Pearson's r of the average ranks."""
    if len(x) < 2:
        return None
    return pearson(average_ranks(x), average_ranks(y))


def evaluate_traces(
    items: Iterable[tuple[PipelineTrace, np.ndarray, np.ndarray | None, str]],
    *,
    ignore_mode: IgnoreMode = "exclude",
    k: int = 3,
    giou_average: str = "mean",
) -> dict[str, Any]:
    """The numbers of the module docstring from ``(trace, gt, ignore, category)`` items
    (``gt``/``ignore`` bool (H, W) at the trace's image size; ``ignore`` may be ``None``).

    Returns ``{"top1" | "best_of_top3" | "initial" | "oracle": {"overall": {giou, ciou, n},
    "per_category": {cat: {…}}}, "correlation": {"pearson", "spearman", "mae", "n", "unscored"},
    "n", "with_evaluator"}``.
    """
    accs = {
        m: MetricAccumulator(ignore_mode=ignore_mode, giou_average=giou_average) for m in METHODS
    }
    pred_scores: list[float] = []
    true_ious: list[float] = []
    unscored = n = with_ev = fell_back = 0
    for trace, gt, ign, cat in items:
        n += 1
        by_id = {c.id: c for c in trace.candidates}
        iu = {cid: intersection_union(c.mask, gt, ign, ignore_mode) for cid, c in by_id.items()}
        iou = {cid: sample_iou(*v) for cid, v in iu.items()}
        order = {cid: i for i, cid in enumerate(by_id)}
        rank = ranking_of(trace)
        empty = intersection_union(
            np.zeros(gt.shape, dtype=bool), gt, ign, ignore_mode
        )  # no candidate at all
        initial = (
            empty
            if trace.initial_mask is None
            else intersection_union(trace.initial_mask, gt, ign, ignore_mode)
        )
        if trace.evaluator is not None and trace.evaluator.fell_back_to_initial:
            fell_back += 1  # no readable score: the answer is M
            accs["top1"].add_counts(*initial, cat)
            accs["best_of_top3"].add_counts(*initial, cat)
        else:
            top1 = rank[0] if rank else None
            accs["top1"].add_counts(*(iu[top1] if top1 is not None else empty), cat)
            best3 = best_of_top_k(rank, iou, k)
            accs["best_of_top3"].add_counts(*(iu[best3] if best3 is not None else empty), cat)
        accs["initial"].add_counts(*initial, cat)
        best = max(iou, key=lambda c: (iou[c], -order[c])) if iou else None
        accs["oracle"].add_counts(*(iu[best] if best is not None else empty), cat)
        if trace.evaluator is not None:
            with_ev += 1
            for cid, sc in trace.evaluator.final_scores.items():
                if cid not in iou:
                    continue
                if sc is None:
                    unscored += 1
                else:
                    pred_scores.append(float(sc))
                    true_ious.append(iou[cid])
    x, y = np.asarray(pred_scores), np.asarray(true_ious)
    out: dict[str, Any] = {m: a.result() for m, a in accs.items()}
    out["correlation"] = {
        "pearson": pearson(x, y),
        "spearman": spearman(x, y),
        "mae": float(np.abs(x - y).mean()) if len(x) else None,
        "n": len(x),
        "unscored": unscored,
    }
    out["n"] = n
    out["with_evaluator"] = with_ev
    out["fell_back"] = fell_back
    return out


def _run_items(store, run_id: int, against: str = "gt", used: dict[str, int] | None = None):
    """(trace, reference, ignore, category) per finished sample; ``used`` counts which
    reference each yielded sample was measured against (``gt`` / ``reviewed``)."""
    from core.store import repo

    with store.session(write=False) as s:
        repo.get_run(s, run_id)
        ids = sorted(repo.finished_sample_ids(s, run_id))
    for sid in ids:
        with store.session(write=False) as s:
            trace = repo.load_trace(s, run_id, sid)
            ref = repo.reference_mask(s, sid, against)
            ign = repo.ignore_mask(s, sid)
            cat = repo.get_sample(s, sid).category
        if trace is None or ref.mask is None:
            continue
        if used is not None:
            used[ref.used] = used.get(ref.used, 0) + 1
        yield trace, ref.mask, ign, cat


def evaluate_run(
    store,
    run_id: int,
    *,
    ignore_mode: IgnoreMode = "exclude",
    k: int = 3,
    giou_average: str = "mean",
    against: str = "gt",
) -> dict[str, Any]:
    """:func:`evaluate_traces` over every finished sample of run ``run_id`` in ``store``,
    measured against ``against`` (``"gt"`` or ``"reviewed"``, module doc), plus ``run_id``,
    ``is_random`` (the run used random-weight models), ``against`` and ``reference``
    (``{"gt": n, "reviewed": m}``: how many samples were measured against which mask)."""
    from core.store import repo

    if against not in repo.REFERENCE_KINDS:
        raise ValueError(f"unknown reference {against!r}; use one of {list(repo.REFERENCE_KINDS)}")
    with store.session(write=False) as s:
        is_random = bool(repo.get_run(s, run_id).is_random)
    used: dict[str, int] = {"gt": 0, "reviewed": 0}
    out = evaluate_traces(
        _run_items(store, run_id, against, used),
        ignore_mode=ignore_mode,
        k=k,
        giou_average=giou_average,
    )
    out["giou_average"] = giou_average
    out["run_id"] = int(run_id)
    out["is_random"] = is_random
    out["against"] = against
    out["reference"] = used
    return out


def reference_line(res: dict[str, Any]) -> str:
    """One line naming what :func:`evaluate_run`'s numbers were measured against."""
    used = res.get("reference", {})
    if res.get("against", "gt") == "gt":
        return f"measured against: the imported ground truth ({used.get('gt', 0)} samples)"
    return (
        f"measured against: reviewed masks ({used.get('reviewed', 0)} samples with an edited mask; "
        f"{used.get('gt', 0)} samples nobody edited fell back to their imported ground truth)"
    )


def _fmt(v: float | None, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def format_table(res: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_run`'s result."""
    cats = sorted({c for m in METHODS for c in res[m]["per_category"]})
    head = f"{'':<16}{'':>6}" + "".join(f"{LABELS[m]:>24}" for m in METHODS)
    sub = f"{'category':<16}{'n':>6}" + "".join(f"{'gIoU':>12}{'cIoU':>12}" for _ in METHODS)
    lines = [reference_line(res), head, sub]
    for cat in [*cats, "overall"]:
        rows = [
            res[m]["overall"] if cat == "overall" else res[m]["per_category"].get(cat)
            for m in METHODS
        ]
        n = next((r.get("n") for r in rows if r), 0)
        line = f"{cat:<16}{n:>6}"
        for r in rows:
            r = r or {}
            line += f"{_fmt(r.get('giou')):>12}{_fmt(r.get('ciou')):>12}"
        lines.append(line)
    c = res["correlation"]
    lines.append(
        f"evaluator score vs true IoU: Pearson {_fmt(c['pearson'], 3)}, Spearman {_fmt(c['spearman'], 3)}, "
        f"MAE {_fmt(c.get('mae'), 3)} "
        f"over {c['n']} scored candidates ({c.get('unscored', 0)} unreadable scores left out)"
    )
    lines.append(
        f"{res.get('fell_back', 0)} of {res.get('n', 0)} samples fell back to the initial mask M "
        "(no readable evaluator score)"
    )
    if res.get("with_evaluator", 0) < res.get("n", 0):
        lines.append(
            f"{res['n'] - res.get('with_evaluator', 0)} of {res['n']} samples have no evaluator output: "
            "their top-1 / top-3 follow the stage-1 candidate order"
        )
    if res.get("is_random"):
        lines.insert(
            0,
            "RANDOM WEIGHTS: this run used random-init models; these numbers are noise, not a result",
        )
    return "\n".join(lines)


def coverage_curve(store, run_id: int, max_n: int = 15, *, against: str = "gt") -> list[float]:
    """Mean over samples of the best true IoU among the first n candidates in ranking order,
    for n = 1..max_n: how much of the oracle a candidate budget of n reaches (reference as
    :func:`evaluate_run`'s ``against``)."""
    rows = []
    for trace, gt, ign, _cat in _run_items(store, run_id, against):
        by_id = {c.id: c for c in trace.candidates}
        ious = [sample_iou(*intersection_union(by_id[c].mask, gt, ign)) for c in ranking_of(trace)]
        rows.append([max(ious[:n]) if ious[:n] else 0.0 for n in range(1, max_n + 1)])
    return [float(v) for v in np.mean(rows, axis=0)] if rows else []
