"""The attention heatmap as an RGBA image (§4.1–4.2): each image token's aggregated attention,
normalised to [0, 1] over the tokens on the image, coloured with a colour map and painted over
the token's box; transparent outside every box.

The colour map is applied to the N token values, not to the H × W pixels: the boxes are painted
as token indices and the colours looked up once (``bench/canvas_latency.py`` times it).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


def _clipped_boxes(boxes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """int (N, 4) x0, y0, x1, y1: each box widened to whole pixels and clipped to the image."""
    h, w = hw
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.stack(
        [np.floor(b[:, 0]), np.floor(b[:, 1]), np.ceil(b[:, 2]), np.ceil(b[:, 3])], axis=1
    )
    out = np.clip(out, 0, [w, h, w, h])
    return out.astype(np.int64)


def heatmap_rgba(
    token_map: np.ndarray, boxes: np.ndarray, hw: tuple[int, int], cmap: str = "inferno"
) -> tuple[np.ndarray | None, tuple[float, float] | None]:
    """uint8 (H, W, 4) RGBA and the (lo, hi) range of the attention values it shows, or
    ``(None, None)`` when no token box touches the image. Where boxes overlap, the later token
    is drawn on top (and only tokens left visible count towards the range)."""
    vals = np.asarray(token_map, dtype=np.float64).ravel()
    xyxy = _clipped_boxes(boxes, hw)
    if len(vals) != len(xyxy):
        raise ValueError(f"{len(vals)} token values for {len(xyxy)} token boxes")
    index = np.zeros(hw, np.int32)  # 1 + the token drawn at each pixel; 0: none
    for i in np.flatnonzero(np.isfinite(vals)):
        x0, y0, x1, y1 = xyxy[i]
        index[y0:y1, x0:x1] = i + 1
    shown = np.bincount(index.ravel(), minlength=len(vals) + 1)[1:] > 0
    if not shown.any():
        return None, None
    lo, hi = float(vals[shown].min()), float(vals[shown].max())
    lut = np.zeros((len(vals) + 1, 4), np.uint8)
    norm = np.clip(np.nan_to_num((vals - lo) / (hi - lo if hi > lo else 1.0)), 0.0, 1.0)
    lut[1:] = pg.colormap.get(cmap).map(norm, mode="byte")
    return np.take(lut, index, axis=0), (lo, hi)  # take: several times faster than lut[index]
