"""The generator's prompt image (App. C): the target's tightest box in red, the other instances
of its group in blue, drawn over the original image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

RED = (255, 0, 0)
BLUE = (0, 0, 255)
# Not from the paper: the box line width in pixels (the paper does not say).
BOX_THICKNESS = 3


def box_thickness_for(hw: tuple[int, int]) -> int:
    """Line width: :data:`BOX_THICKNESS`, thinner on images too small to hold it."""
    return max(1, min(BOX_THICKNESS, min(hw) // 16))


def draw_prompt_boxes(
    image_rgb: np.ndarray,
    target_xyxy: Sequence[int],
    others_xyxy: Sequence[Sequence[int]],
    *,
    thickness: int | None = None,
) -> np.ndarray:
    """A copy of ``image_rgb`` (uint8 (H, W, 3) RGB) with boxes drawn inside their bounds.

    Boxes are ``(x0, y0, x1, y1)`` in image pixels with exclusive max (as
    :func:`core.masks.bbox_xyxy`); a box's outline covers its outermost ``thickness`` pixels.
    Blue boxes are drawn first, so the red target box is on top where they overlap.
    """
    img = np.ascontiguousarray(np.asarray(image_rgb, dtype=np.uint8).copy())
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got shape {img.shape}")
    t = thickness or box_thickness_for(img.shape[:2])
    for box, color in [*((b, BLUE) for b in others_xyxy), (target_xyxy, RED)]:
        _outline(img, box, color, t)
    return img


def _outline(img: np.ndarray, box: Sequence[int], color: tuple[int, int, int], t: int) -> None:
    x0, y0, x1, y1 = (int(v) for v in box)
    for i in range(t):
        if x1 - 1 - i < x0 + i or y1 - 1 - i < y0 + i:
            break
        cv2.rectangle(img, (x0 + i, y0 + i), (x1 - 1 - i, y1 - 1 - i), color, 1)


def draw_numbered_boxes(
    image_rgb: np.ndarray, boxes_xyxy: Sequence[Sequence[int]], *, thickness: int | None = None
) -> np.ndarray:
    """A copy of ``image_rgb`` (uint8 (H, W, 3) RGB) with every box in blue and its number
    (1, 2, … in the order given) in white on a blue tag at its top-left corner: the uniqueness
    check's image (not from the paper), where no box is singled out as the target.

    Boxes are ``(x0, y0, x1, y1)`` in image pixels with exclusive max.
    """
    img = np.ascontiguousarray(np.asarray(image_rgb, dtype=np.uint8).copy())
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got shape {img.shape}")
    t = thickness or box_thickness_for(img.shape[:2])
    for box in boxes_xyxy:
        _outline(img, box, BLUE, t)
    scale = max(0.3, min(img.shape[:2]) / 600)
    for n, box in enumerate(boxes_xyxy, start=1):
        label = str(n)
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = int(box[0]), int(box[1])
        cv2.rectangle(img, (x, y), (x + w + 2, y + h + base + 2), BLUE, -1)
        cv2.putText(
            img, label, (x + 1, y + h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1
        )
    return img
