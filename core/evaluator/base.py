"""The evaluator interface (§4.3): image, question and a group of masks → per-mask IoU guesses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class GroupResult:
    scores: list[float | None]
    cot: str | None
    raw_text: str
    prompt: str
    parse_error: str | None
    seconds: float = 0.0


@runtime_checkable
class MaskEvaluator(Protocol):
    name: str
    backend: str
    is_random: bool

    def score_groups(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        """One result per group; masks are bool (H, W) at the image's size."""
        ...


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A bool mask as the uint8 RGB picture the model sees (white = mask)."""
    m = (np.asarray(mask, dtype=bool) * 255).astype(np.uint8)
    return np.repeat(m[:, :, None], 3, axis=2)
