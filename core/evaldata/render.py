"""The App. D prompt images: red boxes over the original image (Figures S8–S10), numbered with
their target IDs for S9 (which asks for one question per "labeled instance")."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from core.benchmark.render import RED, draw_prompt_boxes


def draw_red_boxes(
    image_rgb: np.ndarray,
    boxes_xyxy: Sequence[Sequence[int]],
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """A copy of ``image_rgb`` (uint8 (H, W, 3) RGB) with every box in red (xyxy, exclusive max,
    image pixels), each with its label (white on red, at the box's top-left corner) when given."""
    img = np.asarray(image_rgb, dtype=np.uint8)
    for box in boxes_xyxy:
        img = draw_prompt_boxes(img, box, [])
    if labels:
        img = np.ascontiguousarray(img.copy())
        scale = max(0.4, min(img.shape[:2]) / 600)
        th = max(1, int(round(scale * 2)))
        for box, text in zip(boxes_xyxy, labels, strict=True):
            (tw, tht), base = cv2.getTextSize(str(text), cv2.FONT_HERSHEY_SIMPLEX, scale, th)
            x0 = int(min(max(0, box[0]), max(0, img.shape[1] - tw - 2)))
            y0 = int(min(max(tht + base + 2, box[1]), img.shape[0] - 1))
            cv2.rectangle(img, (x0, y0 - tht - base - 2), (x0 + tw + 2, y0), RED, -1)
            cv2.putText(
                img,
                str(text),
                (x0 + 1, y0 - base - 1),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (255, 255, 255),
                th,
                cv2.LINE_AA,
            )
    return img


def component_boxes(
    mask: np.ndarray, *, max_boxes: int = 10, min_fraction: float = 0.02
) -> list[list[int]]:
    """Tight xyxy boxes (exclusive max) of the connected parts of a bool (H, W) mask, largest
    first: parts under ``min_fraction`` of the mask's area are left out, and at most
    ``max_boxes`` are kept (the rest join the last box). Empty mask: ``[]``."""
    m = np.asarray(mask, dtype=bool)
    total = int(m.sum())
    if total == 0:
        return []
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    parts = sorted(
        (i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_fraction * total),
        key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]),
    ) or [int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1]
    boxes = []
    for i in parts:
        x, y, w, h = (int(stats[i, k]) for k in (0, 1, 2, 3))
        boxes.append([x, y, x + w, y + h])
    if len(boxes) > max_boxes:
        rest = boxes[max_boxes - 1 :]
        boxes = boxes[: max_boxes - 1] + [
            [
                min(b[0] for b in rest),
                min(b[1] for b in rest),
                max(b[2] for b in rest),
                max(b[3] for b in rest),
            ]
        ]
    return boxes
