"""Is the evaluator any good? Its scores against the true IoU on held-out questions (§4.3).

For each held-out question (:class:`core.evaluator.trainset.QuestionSet`) the candidates are
grouped as at inference (:func:`core.evaluator.grouping.make_groups`, s = 5, last group padded)
and scored; then

- **agreement** over every scored candidate of every question: Pearson and Spearman of predicted
  vs true IoU, and the mean absolute error (MAE);
- **selection**: gIoU (mean over questions) of the top-1 candidate by score, of the initial mask M
  when the data names it (``initial_iou``), and of the oracle (the best candidate by true IoU);
- **position bias**: the same candidates reshuffled into other groups ``repeats`` (R) times
  (seeds ``[seed, r, question index]``). For each question, Kendall's τ-b between the candidate
  scores of every pair of repeats (mean over pairs, then over questions): 1 = the ranking does not
  depend on which masks share a group or where a mask sits; and the score spread, the standard
  deviation of one candidate's score over the R repeats (mean over candidates). ``top1_agreement``
  is the share of repeats whose top-1 candidate is that of repeat 0.

Repeat 0 gives the agreement and selection numbers. A score the parser could not read is left out
(counted in ``unscored``) and never read as 0; a question with no readable score picks nothing for
its top-1 (IoU 0, counted in ``no_pick``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.evaluator.evaluate import pearson, spearman
from core.evaluator.grouping import GROUP_SIZE, make_groups

QUALITY_FILE = "quality.json"
"""Where ``rea2seg eval --evaluator DIR --save DIR/quality.json`` keeps an adapter's numbers."""


def read_quality(adapter_dir: str | Path) -> dict[str, Any] | None:
    """``adapter_dir/quality.json`` (:func:`assess_evaluator`'s result), or None when absent or
    unreadable."""
    f = Path(adapter_dir) / QUALITY_FILE
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def mae(pred: Sequence[float], true: Sequence[float]) -> float | None:
    """Mean absolute error of two equal-length sequences; ``None`` when empty."""
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"{p.shape} predictions for {t.shape} targets")
    return float(np.abs(p - t).mean()) if len(p) else None


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's τ-b of two equal-length sequences (ties in either corrected for, as
    ``scipy.stats.kendalltau``'s default); ``None`` for fewer than 2 items or a constant input."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"lengths differ: {x.shape} vs {y.shape}")
    n = len(x)
    if n < 2:
        return None
    i, j = np.triu_indices(n, k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    concordant_minus_discordant = float((dx * dy).sum())
    n0 = len(i)
    tx, ty = float((dx == 0).sum()), float((dy == 0).sum())
    denom = np.sqrt((n0 - tx) * (n0 - ty))
    return None if denom == 0 else concordant_minus_discordant / float(denom)


def position_bias(score_runs: Sequence[Sequence[float | None]]) -> dict[str, Any]:
    """Position-bias numbers of ONE question from its ``R`` score vectors (``score_runs[r][i]``:
    candidate ``i``'s score in repeat ``r``; ``None`` = unreadable).

    Returns ``{"kendall_tau": mean τ-b over repeat pairs (candidates readable in both),
    "score_spread": mean over candidates of the population std of its readable scores (≥ 2),
    "top1_agreement": share of repeats whose argmax is repeat 0's, "pairs": pairs used}``;
    a number is ``None`` when nothing could be computed.
    """
    runs = [list(r) for r in score_runs]
    taus = []
    for a, b in itertools.combinations(range(len(runs)), 2):
        both = [k for k in range(len(runs[a])) if runs[a][k] is not None and runs[b][k] is not None]
        t = kendall_tau([runs[a][k] for k in both], [runs[b][k] for k in both])
        if t is not None:
            taus.append(t)
    spreads = []
    for k in range(len(runs[0]) if runs else 0):
        vals = [r[k] for r in runs if r[k] is not None]
        if len(vals) >= 2:
            spreads.append(float(np.std(vals)))

    def top1(r):
        known = [(v, -k) for k, v in enumerate(r) if v is not None]
        return -max(known)[1] if known else None

    tops = [top1(r) for r in runs]
    agree = float(np.mean([t == tops[0] for t in tops])) if runs and tops[0] is not None else None
    return {
        "kendall_tau": float(np.mean(taus)) if taus else None,
        "score_spread": float(np.mean(spreads)) if spreads else None,
        "top1_agreement": agree,
        "pairs": len(taus),
    }


def score_question(
    evaluator, qs, groups, image: np.ndarray, masks: list[np.ndarray], cot: bool
) -> list[float | None]:
    """One score per candidate of ``qs`` from scoring ``groups`` (of candidate indices) with
    ``evaluator`` (a :class:`core.evaluator.base.MaskEvaluator`); padding slots are ignored."""
    results = evaluator.score_groups(
        image, qs.question, [[masks[i] for i in g.candidate_ids] for g in groups], cot
    )
    scores: list[float | None] = [None] * len(qs)
    for g, r in zip(groups, results, strict=True):
        for i, s in zip(g.own_ids, r.scores, strict=False):
            scores[i] = None if s is None else float(s)
    return scores


def assess_evaluator(
    evaluator,
    questions: Sequence,
    *,
    repeats: int = 3,
    group_size: int = GROUP_SIZE,
    cot: bool = False,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The numbers of the module docstring for ``evaluator`` on ``questions``
    (:class:`core.evaluator.trainset.QuestionSet`; an optional ``extra["initial_iou"]`` is the
    initial mask M's true IoU). ``repeats`` ≥ 1 groupings per question; ``progress(done, total)``
    after each question.

    Returns ``{"n_questions", "n_candidates", "unscored", "pearson", "spearman", "mae",
    "giou": {"top1", "initial", "oracle"}, "no_pick", "position_bias": {"repeats",
    "kendall_tau", "score_spread", "top1_agreement"}, "points": [[pred, true], …]}``
    (``points``: repeat 0, for a scatter plot).
    """
    if int(repeats) < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    pred, true = [], []
    top1, oracle, initial = [], [], []
    taus, spreads, agrees = [], [], []
    unscored = no_pick = 0
    for qi, qs in enumerate(questions):
        image = qs.load_image()
        masks = [qs.load_mask(i) for i in range(len(qs))]
        runs = []
        for r in range(int(repeats)):
            groups = make_groups(range(len(qs)), group_size, [int(seed), r, qi])
            runs.append(score_question(evaluator, qs, groups, image, masks, cot))
        first = runs[0]
        for s, t in zip(first, qs.ious, strict=True):
            if s is None:
                unscored += 1
            else:
                pred.append(s)
                true.append(t)
        known = [(s, -i) for i, s in enumerate(first) if s is not None]
        if known:
            top1.append(qs.ious[-max(known)[1]])
        else:
            top1.append(0.0)
            no_pick += 1
        oracle.append(max(qs.ious))
        if qs.extra.get("initial_iou") is not None:
            initial.append(float(qs.extra["initial_iou"]))
        if repeats > 1:
            pb = position_bias(runs)
            if pb["kendall_tau"] is not None:
                taus.append(pb["kendall_tau"])
            if pb["score_spread"] is not None:
                spreads.append(pb["score_spread"])
            if pb["top1_agreement"] is not None:
                agrees.append(pb["top1_agreement"])
        if progress is not None:
            progress(qi + 1, len(questions))
    x, y = np.asarray(pred), np.asarray(true)

    def mean(v):
        return float(np.mean(v)) if v else None

    return {
        "n_questions": len(questions),
        "n_candidates": len(pred) + unscored,
        "unscored": unscored,
        "pearson": pearson(x, y),
        "spearman": spearman(x, y),
        "mae": mae(x, y),
        "giou": {"top1": mean(top1), "initial": mean(initial), "oracle": mean(oracle)},
        "no_pick": no_pick,
        "position_bias": {
            "repeats": int(repeats),
            "kendall_tau": mean(taus),
            "score_spread": mean(spreads),
            "top1_agreement": mean(agrees),
        },
        "points": [[float(a), float(b)] for a, b in zip(pred, true, strict=True)],
    }


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def format_quality(res: dict[str, Any]) -> str:
    """A plain-text report of :func:`assess_evaluator`'s result."""
    g, pb = res["giou"], res["position_bias"]
    lines = [
        f"{res['n_questions']} held-out questions, {res['n_candidates']} candidates "
        f"({res['unscored']} unreadable scores left out)",
        f"predicted vs true IoU: Spearman {_fmt(res['spearman'])}, Pearson {_fmt(res['pearson'])}, "
        f"MAE {_fmt(res['mae'])}",
        f"gIoU: top-1 {_fmt(g['top1'])}, initial mask M {_fmt(g['initial'])}, oracle {_fmt(g['oracle'])}"
        + (f" ({res['no_pick']} questions without a readable score)" if res["no_pick"] else ""),
    ]
    if pb["repeats"] > 1:
        lines.append(
            f"position bias over {pb['repeats']} regroupings: rank stability Kendall τ "
            f"{_fmt(pb['kendall_tau'])}, score spread (std) {_fmt(pb['score_spread'])}, "
            f"top-1 agreement {_fmt(pb['top1_agreement'])}"
        )
    if g["initial"] is None:
        lines.append("(the data names no initial mask M for these questions)")
    return "\n".join(lines)


@dataclass
class HeldOutQuestion:
    """A question held in memory (e.g. a sample of a run): the same interface as
    :class:`core.evaluator.trainset.QuestionSet` for :func:`assess_evaluator`."""

    question: str
    image: np.ndarray
    masks: list[np.ndarray]
    ious: list[float]
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.masks)

    def load_image(self) -> np.ndarray:
        return self.image

    def load_mask(self, i: int) -> np.ndarray:
        return self.masks[i]


def run_questions(store, run_id: int, against: str = "gt", ignore_mode: str = "exclude"):
    """The finished samples of run ``run_id`` as :class:`HeldOutQuestion` (its stage-1 candidates,
    their true IoUs against ``against``, and the initial mask M's IoU in ``extra``), lazily;
    samples without a trace, candidates or reference are skipped."""
    from core.images import load_image_rgb
    from core.metrics import intersection_union, sample_iou
    from core.store import repo

    with store.session(write=False) as s:
        repo.get_run(s, run_id)
        ids = sorted(repo.finished_sample_ids(s, run_id))
    for sid in ids:
        with store.session(write=False) as s:
            trace = repo.load_trace(s, run_id, sid)
            ref = repo.reference_mask(s, sid, against)
            ign = repo.ignore_mask(s, sid)
            smp = repo.get_sample(s, sid)
            path, question = repo.image_path(smp), smp.question
        if trace is None or ref.mask is None or not trace.candidates:
            continue
        gt = ref.mask
        masks = [c.mask for c in trace.candidates]
        ious = [sample_iou(*intersection_union(m, gt, ign, ignore_mode)) for m in masks]
        init = (
            sample_iou(*intersection_union(trace.initial_mask, gt, ign, ignore_mode))
            if trace.initial_mask is not None
            else None
        )
        yield HeldOutQuestion(question, load_image_rgb(path), masks, ious, {"initial_iou": init})
