"""The candidate set M: 3 multimask + 3 semantic + ≤ top_n AMG masks (§4.2, §5.1).

Merge rule: groups are taken in origin order (``multimask``, ``semantic``, ``amg``), each in its
own order. An empty mask is dropped (not from the paper: it cannot be a target). The paper has
no de-duplication, and by default (``dedupe_iou=None``) there is none. With ``dedupe_iou`` set
(not from the paper) a mask that duplicates a mask already kept — exactly equal, or IoU ≥
``dedupe_iou`` — is dropped too; the earlier mask wins, so a duplicate is kept under the first
origin that produced it. ``caps`` (e.g. ``{"amg": top_n}``) cut a group AFTER de-duplication, so
the dropped duplicates are replaced by the next masks of that group: AMG still gives up to
``top_n``. Ids are 0, 1, … in kept order; ``origin_rank`` is the mask's position within its own
group as produced (before de-duplication).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.masks import bbox_xyxy, mask_iou
from core.trace import Candidate

ORIGIN_ORDER = ("multimask", "semantic", "amg", "concept")
"""Candidate origins in merge order; ``concept`` (SAM 3 from a text phrase) is not from the paper
and off by default (:mod:`core.pipeline.concept`)."""


def stability_score(logits: np.ndarray, offset: float = 1.0, threshold: float = 0.0) -> np.ndarray:
    """SAM's stability score per mask: IoU of ``L > threshold + offset`` and ``L > threshold - offset``.

    logits: float (M, H, W) or (H, W). Returns float32 (M,) (or a 0-d array); 1.0 where both
    masks are empty.
    """
    L = np.asarray(logits)
    squeeze = L.ndim == 2
    L = L.reshape(-1, *L.shape[-2:])
    inter = np.count_nonzero(L > threshold + offset, axis=(1, 2)).astype(np.float64)
    union = np.count_nonzero(L > threshold - offset, axis=(1, 2)).astype(np.float64)
    out = np.where(union == 0, 1.0, inter / np.where(union == 0, 1.0, union)).astype(np.float32)
    return out[0] if squeeze else out


def is_duplicate(mask: np.ndarray, kept: list[np.ndarray], dedupe_iou: float = 0.95) -> bool:
    """True when ``mask`` equals a kept mask or has IoU ≥ ``dedupe_iou`` with one."""
    return any(np.array_equal(mask, k) or mask_iou(mask, k) >= dedupe_iou for k in kept)


def build_candidates(
    groups: list[tuple[str, list[dict[str, Any]]]],
    dedupe_iou: float | None = None,
    caps: dict[str, int] | None = None,
) -> list[Candidate]:
    """Merge candidate groups into the final list (rules in the module docstring).

    groups: ``[(origin, items), ...]`` with origin in :data:`ORIGIN_ORDER`; each item
    ``{"mask": bool (H, W), "score": float (SAM's predicted IoU), "stability": float | None,
    "seed_index": int | None}``.
    """
    if dedupe_iou is not None and not 0.0 < dedupe_iou <= 1.0:
        raise ValueError(f"dedupe_iou must be in (0, 1] or None, got {dedupe_iou}")
    caps = caps or {}
    kept: list[Candidate] = []
    for origin, items in groups:
        if origin not in ORIGIN_ORDER:
            raise ValueError(f"unknown candidate origin {origin!r}")
        cap = caps.get(origin)
        if cap is not None and cap < 0:
            raise ValueError(f"cap for {origin} must be >= 0, got {cap}")
        taken = 0
        for rank, it in enumerate(items):
            if cap is not None and taken >= cap:
                break
            m = np.asarray(it["mask"], dtype=bool)
            if not m.any():
                continue
            if dedupe_iou is not None and is_duplicate(m, [c.mask for c in kept], dedupe_iou):
                continue
            taken += 1
            stab = it.get("stability")
            seed = it.get("seed_index")
            kept.append(
                Candidate(
                    id=len(kept),
                    origin=origin,
                    origin_rank=rank,
                    mask=m,
                    sam_score=float(it["score"]),
                    stability=None if stab is None else float(stab),
                    seed_index=None if seed is None else int(seed),
                    area=int(np.count_nonzero(m)),
                    box_xyxy=bbox_xyxy(m),
                )
            )
    return kept
