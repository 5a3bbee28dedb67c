"""Attention-seeded automatic mask generation and its top-N budget (§4.2, App. B).

Each seed point is one single-point prompt to SAM's decoder (multimask, batched); the masks go
through the library's AMG filters (predicted IoU > ``pred_iou_thresh``, stability score at
``stability_score_offset`` ≥ ``stability_score_thresh``) and greedy box NMS at
``box_nms_thresh``, which leaves them sorted by predicted IoU, best first. Seeds are denser in
high-attention patches, so their masks tend to survive NMS and head the list; keeping the
first ``top_n`` is the mask budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.models.base import AmgMask, SamBackend
from core.pipeline.settings import Stage1Settings

_D = Stage1Settings()  # the defaults below are its fields (the paper's, App. B)


def amg_settings(
    pred_iou_thresh: float,
    stability_score_thresh: float,
    stability_score_offset: float = _D.stability_score_offset,
    box_nms_thresh: float = _D.box_nms_thresh,
    points_per_batch: int = _D.points_per_batch,
) -> dict[str, Any]:
    """The settings dict ``SamBackend.amg_from_seeds`` reads (the generators' own argument names).

    Paper values per backbone: :meth:`Stage1Settings.for_backbone` (App. B).
    """
    return {
        "pred_iou_thresh": float(pred_iou_thresh),
        "stability_score_thresh": float(stability_score_thresh),
        "stability_score_offset": float(stability_score_offset),
        "box_nms_thresh": float(box_nms_thresh),
        "points_per_batch": int(points_per_batch),
    }


def apply_budget(masks: list[AmgMask], top_n: int | None = _D.top_n) -> list[AmgMask]:
    """The first ``top_n`` non-empty masks of a best-first list (N = 9 in the paper, §5.1);
    ``None`` keeps them all (the cut is then made later, after an optional de-duplication)."""
    if top_n is not None and top_n < 0:
        raise ValueError(f"top_n must be >= 0, got {top_n}")
    kept = [m for m in masks if np.any(m.mask)]
    return kept if top_n is None else kept[:top_n]


def seed_amg(
    sam_backend: SamBackend,
    seeds_xy: np.ndarray,
    *,
    pred_iou_thresh: float,
    stability_score_thresh: float,
    stability_score_offset: float = _D.stability_score_offset,
    box_nms_thresh: float = _D.box_nms_thresh,
    points_per_batch: int = _D.points_per_batch,
    top_n: int | None = _D.top_n,
) -> list[AmgMask]:
    """Seed-point AMG on the backend's current image, then the top-``top_n`` budget.

    seeds_xy: float (K, 2) pixel points ``(x, y)``. Each returned mask is bool (H, W) at the
    original resolution with its predicted IoU, stability score and the index of its seed in
    ``seeds_xy``; best first. The backend reuses its cached image embedding. ``top_n=None``
    returns every mask that passed the filters (stage 1 cuts after de-duplication).
    """
    settings = amg_settings(
        pred_iou_thresh,
        stability_score_thresh,
        stability_score_offset,
        box_nms_thresh,
        points_per_batch,
    )
    return apply_budget(
        sam_backend.amg_from_seeds(np.asarray(seeds_xy, dtype=np.float32), settings), top_n
    )
