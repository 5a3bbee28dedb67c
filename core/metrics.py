"""gIoU and cIoU as LISA's validation defines them.

For each sample LISA computes, over the pixels that are not *ignore* (label 255 in its masks):

- ``I`` = |pred ∧ gt|, ``U`` = |pred| + |gt| − I (foreground class only);
- per-sample IoU = ``I / (U + 1e-5)``, plus 1.0 when ``U == 0`` (empty prediction on an empty
  ground truth counts as a perfect 1.0; an empty prediction on a non-empty ground truth is 0;
  a non-empty prediction on an empty ground truth is 0);
- **gIoU** = mean over samples of the per-sample IoU;
- **cIoU** = ΣI / (ΣU + 1e-10).

The epsilons are LISA's own, kept so numbers reproduce to the last digit. LENS's evaluation
script does not exclude ignore pixels: it treats them as background. Pass
``ignore_mode="background"`` to reproduce that; the default ``"exclude"`` is LISA's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from core.vocab import IGNORE_MODES, IgnoreMode

GiouAverage = Literal["mean", "lisa"]
SAMPLE_EPS = 1e-5
CUMULATIVE_EPS = 1e-10


def intersection_union(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore: np.ndarray | None = None,
    ignore_mode: IgnoreMode = "exclude",
) -> tuple[int, int]:
    """(I, U) of bool (H, W) masks with LISA's ignore handling (see module docstring)."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    pred = pred.astype(bool, copy=False)
    gt = gt.astype(bool, copy=False)
    if ignore is not None and ignore_mode == "exclude":
        if ignore.shape != gt.shape:
            raise ValueError(f"ignore shape {ignore.shape} != ground-truth shape {gt.shape}")
        keep = ~ignore.astype(bool, copy=False)
        pred = pred & keep
        gt = gt & keep
    elif ignore_mode not in IGNORE_MODES:
        raise ValueError(f"ignore_mode must be 'exclude' or 'background', got {ignore_mode!r}")
    inter = int(np.count_nonzero(pred & gt))
    union = int(np.count_nonzero(pred)) + int(np.count_nonzero(gt)) - inter
    return inter, union


def sample_iou(inter: int, union: int) -> float:
    """LISA's per-sample IoU: ``I / (U + 1e-5)``, and 1.0 for ``U == 0``."""
    iou = inter / (union + SAMPLE_EPS)
    if union == 0:
        iou += 1.0
    return float(iou)


@dataclass
class MetricAccumulator:
    """Accumulates (I, U) per sample, overall and per category."""

    ignore_mode: IgnoreMode = "exclude"
    giou_average: GiouAverage = "mean"
    _rows: list[tuple[str, int, int]] = field(default_factory=list)

    def add(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        ignore: np.ndarray | None = None,
        category: str = "other",
    ) -> float:
        """Add one sample; returns its per-sample IoU."""
        inter, union = intersection_union(pred, gt, ignore, self.ignore_mode)
        self._rows.append((category, inter, union))
        return sample_iou(inter, union)

    def add_counts(self, inter: int, union: int, category: str = "other") -> None:
        self._rows.append((category, int(inter), int(union)))

    def __len__(self) -> int:
        return len(self._rows)

    def _summary(self, rows: Iterable[tuple[str, int, int]]) -> dict[str, float | int | None]:
        rows = list(rows)
        if not rows:
            return {"giou": None, "ciou": None, "n": 0}
        ious = [sample_iou(i, u) for _, i, u in rows]
        if self.giou_average not in ("mean", "lisa"):
            raise ValueError(f"giou_average must be 'mean' or 'lisa', got {self.giou_average!r}")
        giou = (
            float(np.sum(ious) / (len(ious) + SAMPLE_EPS))
            if self.giou_average == "lisa"
            else float(np.mean(ious))
        )
        total_i = sum(i for _, i, _ in rows)
        total_u = sum(u for _, _, u in rows)
        return {
            "giou": giou,
            "ciou": float(total_i / (total_u + CUMULATIVE_EPS)),
            "n": len(rows),
        }

    def result(self) -> dict[str, object]:
        """``{"overall": {giou, ciou, n}, "per_category": {cat: {giou, ciou, n}}}``."""
        cats = sorted({c for c, _, _ in self._rows})
        return {
            "overall": self._summary(self._rows),
            "per_category": {c: self._summary(r for r in self._rows if r[0] == c) for c in cats},
        }
