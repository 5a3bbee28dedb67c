"""Mask editing operations (headless): brush, polygon, fill holes, remove specks.

Masks are bool (H, W) at image resolution; coordinates are image pixels (x right, y down).
Every function returns a new array and leaves its input unchanged.
"""

from __future__ import annotations

import cv2
import numpy as np


def paint_stroke(
    mask: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], radius: float, value: bool
) -> np.ndarray:
    """A brush (value True) or eraser (False) stroke from p0 to p1, round caps; p0 == p1 (a click)
    paints exactly the disk of ``radius`` px."""
    out = np.ascontiguousarray(mask, dtype=np.uint8)
    v = 1 if value else 0
    a = (int(round(p0[0])), int(round(p0[1])))
    b = (int(round(p1[0])), int(round(p1[1])))
    r = max(int(round(radius)), 0)
    if a != b:  # a zero-length thick line would paint more than the radius-r disk of a click
        cv2.line(out, a, b, v, thickness=2 * r + 1)
    cv2.circle(out, a, r, v, -1)
    cv2.circle(out, b, r, v, -1)
    return out.astype(bool)


def fill_polygon(mask: np.ndarray, points_xy: np.ndarray, value: bool = True) -> np.ndarray:
    """Fill a polygon (N, 2) of image pixels with ``value``."""
    pts = np.round(np.asarray(points_xy, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) < 3:
        raise ValueError("a polygon needs at least 3 points")
    out = np.ascontiguousarray(mask, dtype=np.uint8)
    cv2.fillPoly(out, [pts], 1 if value else 0)
    return out.astype(bool)


def fill_holes(mask: np.ndarray, max_area: int | None = None) -> np.ndarray:
    """Fill background regions not connected to the image border (4-connectivity), optionally
    only those of at most ``max_area`` pixels."""
    bg = np.ascontiguousarray(~mask, dtype=np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bg, connectivity=4)
    h, w = mask.shape
    out = mask.copy()
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not touches and (max_area is None or area <= max_area):
            out[labels == i] = True
    return out


def remove_specks(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Drop foreground components (8-connectivity) smaller than ``min_area`` pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8
    )
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]
