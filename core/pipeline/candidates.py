"""The candidate set: 3 multimask + 3 semantic + ≤ top_n AMG masks, de-duplicated (§4.2, §5.1)."""

from __future__ import annotations

import numpy as np

from core.masks import bbox_xyxy
from core.pipeline.trace import Candidate


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else inter / union


def build_candidates(groups: list[tuple[str, list[dict]]], dedupe_iou: float = 0.95) -> list[Candidate]:
    """Merge candidate groups in order (multimask, semantic, amg), dropping empty masks and any
    mask whose IoU with an already kept one is ≥ ``dedupe_iou`` (the earlier one is kept).

    Each group item: ``{"mask": bool (H, W), "score": float, "stability": float | None,
    "seed_index": int | None}``. Ids are assigned 0.. in kept order.
    """
    kept: list[Candidate] = []
    for origin, items in groups:
        for rank, it in enumerate(items):
            m = np.asarray(it["mask"], dtype=bool)
            if not m.any():
                continue
            if any(_iou(m, c.mask) >= dedupe_iou for c in kept):
                continue
            kept.append(
                Candidate(
                    id=len(kept),
                    origin=origin,
                    origin_rank=rank,
                    mask=m,
                    sam_score=float(it["score"]),
                    stability=None if it.get("stability") is None else float(it["stability"]),
                    seed_index=it.get("seed_index"),
                    area=int(m.sum()),
                    box_xyxy=bbox_xyxy(m),
                )
            )
    return kept
