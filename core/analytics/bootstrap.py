"""Bootstrap 95% intervals of gIoU and cIoU, and paired intervals of their difference between two
runs (not from the paper: ReasonSeg's val split has 200 images, where 1–2 points of gIoU can be
noise; the paper reports point estimates only).

Percentile bootstrap: ``n_boot`` resamples of the samples with replacement, drawn as
``numpy.random.default_rng(seed).integers(0, n, size=(n_boot, n))`` (in row chunks on large runs,
the same stream); each resample's statistic is
computed by LISA's rules (:mod:`core.metrics`: per-sample IoU ``I / (U + 1e-5)`` with 1.0 for
``U == 0``, gIoU their mean — or ``sum / (n + 1e-5)`` with ``giou_average="lisa"`` —, cIoU
``ΣI / (ΣU + 1e-10)``); the interval is the 2.5th and 97.5th percentile (numpy's linear rule).
The point estimate is the statistic on all samples, from :class:`core.metrics.MetricAccumulator`.

Paired: the two runs are resampled with the same indices over the samples both have, so what
the interval measures is the difference itself, not each run's own spread. A difference whose
interval excludes 0 is unlikely to be noise from the choice of samples (it says nothing about
other kinds of variation, e.g. another training seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.metrics import CUMULATIVE_EPS, SAMPLE_EPS, MetricAccumulator, sample_iou

N_BOOT = 1000
"""Resamples per interval (not from the paper)."""
BOOT_SEED = 0
"""Seed of the resampling (a figure is reproducible; not from the paper)."""
LEVEL = 0.95
CHUNK_CELLS = 20_000_000
"""Resampled indices drawn at once at most (160 MB of int64), whatever the run's size."""


def _counts(rows: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    ious = np.array([sample_iou(int(i), int(u)) for i, u in arr], dtype=np.float64)
    return arr[:, 0], arr[:, 1], ious


def _stats(
    inter: np.ndarray, union: np.ndarray, ious: np.ndarray, idx: np.ndarray, giou_average: str
) -> tuple[np.ndarray, np.ndarray]:
    """gIoU and cIoU of each resample (rows of ``idx``)."""
    n = idx.shape[1]
    total = ious[idx].sum(axis=1)
    giou = total / (n + SAMPLE_EPS) if giou_average == "lisa" else total / n
    ciou = inter[idx].sum(axis=1) / (union[idx].sum(axis=1) + CUMULATIVE_EPS)
    return giou, ciou


def _replicates(
    n: int, n_boot: int, seed: int, fn, chunk_cells: int | None = None
) -> list[np.ndarray]:
    """``fn(idx)`` (a tuple of arrays, one value per row) over all resamples, drawn in chunks of
    at most ``chunk_cells`` indices so memory stays bounded on large runs; the generator's
    stream is the same as one ``integers(0, n, size=(n_boot, n))`` call."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    rows = max(1, (chunk_cells or CHUNK_CELLS) // max(n, 1))
    parts: list[tuple[np.ndarray, ...]] = []
    done = 0
    while done < n_boot:
        k = min(rows, n_boot - done)
        parts.append(fn(rng.integers(0, n, size=(k, n))))
        done += k
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def _point(rows: Sequence[tuple[int, int]], giou_average: str) -> dict[str, float | None]:
    acc = MetricAccumulator(giou_average=giou_average)  # type: ignore[arg-type]
    for i, u in rows:
        acc.add_counts(i, u)
    r = acc.result()["overall"]
    return {"giou": r["giou"], "ciou": r["ciou"]}  # type: ignore[dict-item]


def _interval(values: np.ndarray, level: float) -> list[float]:
    a = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(values, [a, 100.0 - a])
    return [float(lo), float(hi)]


def interval(
    rows: Sequence[tuple[int, int]],
    *,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    level: float = LEVEL,
    giou_average: str = "mean",
) -> dict[str, Any]:
    """``{"giou": v, "ciou": v, "giou_ci": [lo, hi], "ciou_ci": [lo, hi], "n": n}`` of the
    (I, U) ``rows`` (one per sample); the intervals are ``None`` for no samples."""
    n = len(rows)
    if n == 0:
        return {"giou": None, "ciou": None, "giou_ci": None, "ciou_ci": None, "n": 0}
    inter, union, ious = _counts(rows)
    g, c = _replicates(n, n_boot, seed, lambda idx: _stats(inter, union, ious, idx, giou_average))
    return {
        **_point(rows, giou_average),
        "giou_ci": _interval(g, level),
        "ciou_ci": _interval(c, level),
        "n": n,
    }


def paired_difference(
    rows_a: Sequence[tuple[int, int]],
    rows_b: Sequence[tuple[int, int]],
    *,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    level: float = LEVEL,
    giou_average: str = "mean",
) -> dict[str, Any]:
    """A − B of gIoU and cIoU over paired rows (``rows_a[i]`` and ``rows_b[i]`` are the same
    sample): ``{"a": {giou, ciou}, "b": {…}, "giou_diff", "ciou_diff", "giou_ci", "ciou_ci",
    "n"}``, the intervals of the difference from the same resamples of both."""
    if len(rows_a) != len(rows_b):
        raise ValueError(f"paired rows differ in length: {len(rows_a)} != {len(rows_b)}")
    n = len(rows_a)
    if n == 0:
        return {
            "a": {"giou": None, "ciou": None},
            "b": {"giou": None, "ciou": None},
            "giou_diff": None,
            "ciou_diff": None,
            "giou_ci": None,
            "ciou_ci": None,
            "n": 0,
        }
    ca_, cb_ = _counts(rows_a), _counts(rows_b)

    def both(idx: np.ndarray) -> tuple[np.ndarray, ...]:
        return (*_stats(*ca_, idx, giou_average), *_stats(*cb_, idx, giou_average))

    ga, ca, gb, cb = _replicates(n, n_boot, seed, both)
    pa, pb = _point(rows_a, giou_average), _point(rows_b, giou_average)
    return {
        "a": pa,
        "b": pb,
        "giou_diff": float(pa["giou"] - pb["giou"]),  # type: ignore[operator]
        "ciou_diff": float(pa["ciou"] - pb["ciou"]),  # type: ignore[operator]
        "giou_ci": _interval(ga - gb, level),
        "ciou_ci": _interval(ca - cb, level),
        "n": n,
    }


def excludes_zero(ci: Sequence[float] | None) -> bool:
    """True when the interval lies wholly above or below 0."""
    return ci is not None and (ci[0] > 0 or ci[1] < 0)
