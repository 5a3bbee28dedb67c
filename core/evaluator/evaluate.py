"""Evaluation of a run (§5): gIoU / cIoU per SGDR category of the top-1 mask, the best of the
top-3, the stage-1 initial mask and the oracle (best candidate), and how well the evaluator's
scores track the true IoU. Uses :mod:`core.metrics` (LISA's definitions).

The ground truth is the sample's current answer mask (the reviewed, edited mask when there is one). Without
evaluator scores, "top-1"/"top-3" follow the stage-1 candidate order (multimask first),
and the correlation is reported as ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.metrics import MetricAccumulator, intersection_union, sample_iou
from core.store import Store, repo


def _ranking(trace) -> list[int]:
    if trace.evaluator is not None and trace.evaluator.ranking:
        return list(trace.evaluator.ranking)
    return [c.id for c in trace.candidates]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.arange(len(v), dtype=np.float64)
    for val in np.unique(v):  # average ranks for ties
        idx = np.nonzero(v == val)[0]
        ranks[idx] = ranks[idx].mean()
    return ranks


def evaluate_run(store: Store, run_id: int, *, ignore_mode: str = "exclude") -> dict[str, Any]:
    """``{"top1"|"best_of_top3"|"initial"|"oracle": {"overall", "per_category"}, "correlation", "n"}``."""
    accs = {k: MetricAccumulator(ignore_mode=ignore_mode) for k in ("top1", "best_of_top3", "initial", "oracle")}
    pred_scores: list[float] = []
    true_ious: list[float] = []
    with store.session(write=False) as s:
        is_random = repo.get_run(s, run_id).is_random
        ids = sorted(repo.finished_sample_ids(s, run_id))
    n = 0
    for sid in ids:
        with store.session(write=False) as s:
            trace = repo.load_trace(s, run_id, sid)
            smp = repo.get_sample(s, sid)
            gt = repo.current_mask(s, sid) if smp.edited_mask_id is not None else repo.gt_mask(s, sid)
            ign = repo.ignore_mask(s, sid)
        if gt is None or trace is None:
            continue
        n += 1
        cat = smp.category
        empty = np.zeros_like(gt)
        by_id = {c.id: c for c in trace.candidates}
        iu = {cid: intersection_union(c.mask, gt, ign, ignore_mode) for cid, c in by_id.items()}
        ious = {cid: sample_iou(*v) for cid, v in iu.items()}
        rank = _ranking(trace)
        accs["top1"].add(by_id[rank[0]].mask if rank else empty, gt, ign, cat)
        top3 = rank[:3]
        best3 = max(top3, key=lambda c: (ious[c], -c)) if top3 else None
        accs["best_of_top3"].add(by_id[best3].mask if best3 is not None else empty, gt, ign, cat)
        accs["initial"].add(trace.initial_mask if trace.initial_mask is not None else empty, gt, ign, cat)
        best = max(ious, key=lambda c: (ious[c], -c)) if ious else None
        accs["oracle"].add(by_id[best].mask if best is not None else empty, gt, ign, cat)
        if trace.evaluator is not None:
            for cid, sc in trace.evaluator.final_scores.items():
                if sc is not None and cid in ious:
                    pred_scores.append(float(sc))
                    true_ious.append(ious[cid])
    x, y = np.array(pred_scores), np.array(true_ious)
    corr = {"pearson": _pearson(x, y), "spearman": _pearson(_ranks(x), _ranks(y)) if len(x) > 1 else None, "n": len(x)}
    out: dict[str, Any] = {k: a.result() for k, a in accs.items()}
    out["correlation"] = corr
    out["n"] = n
    out["is_random"] = bool(is_random)
    return out


def format_table(res: dict[str, Any]) -> str:
    cats = sorted({c for k in ("top1", "best_of_top3", "initial", "oracle") for c in res[k]["per_category"]})
    lines = [f"{'':<16}" + "".join(f"{k:>24}" for k in ("top-1", "best of top-3", "initial mask", "oracle")),
             f"{'category':<16}" + "".join(f"{'gIoU':>12}{'cIoU':>12}" for _ in range(4))]
    for cat in [*cats, "overall"]:
        row = f"{cat:<16}"
        for k in ("top1", "best_of_top3", "initial", "oracle"):
            r = res[k]["overall"] if cat == "overall" else res[k]["per_category"].get(cat, {"giou": None, "ciou": None})
            row += "".join(f"{v:>12.4f}" if v is not None else f"{'—':>12}" for v in (r["giou"], r["ciou"]))
        lines.append(row)
    c = res["correlation"]
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    lines.append(f"evaluator score vs true IoU: Pearson {fmt(c['pearson'])}, Spearman {fmt(c['spearman'])} over {c['n']} candidates")
    if res.get("is_random"):
        lines.insert(0, "RANDOM WEIGHTS: this run used random-init models; these numbers are noise, not a result")
    return "\n".join(lines)


def coverage_curve(store: Store, run_id: int, max_n: int = 15) -> list[float]:
    """Mean over samples of the best true IoU among the first n candidates (in ranking order),
    for n = 1..max_n: how much of the oracle the candidate budget reaches."""
    with store.session(write=False) as s:
        ids = sorted(repo.finished_sample_ids(s, run_id))
    rows = []
    for sid in ids:
        with store.session(write=False) as s:
            trace = repo.load_trace(s, run_id, sid)
            gt = repo.current_mask(s, sid)
            ign = repo.ignore_mask(s, sid)
        if trace is None or gt is None:
            continue
        by_id = {c.id: c for c in trace.candidates}
        ious = [sample_iou(*intersection_union(by_id[c].mask, gt, ign)) for c in _ranking(trace)]
        rows.append([max(ious[:n]) if ious[:n] else 0.0 for n in range(1, max_n + 1)])
    return [float(v) for v in np.mean(rows, axis=0)] if rows else []
