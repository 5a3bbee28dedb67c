"""The mask-evaluator interface (§4.3): image, question and a group of masks → per-mask IoU estimates.

Every backend (local InternVL, OpenAI-compatible endpoint, the tiny random build) implements
:class:`MaskEvaluator`. ``score_groups`` scores several groups of one image at once (a backend
may batch them into one forward pass or send them concurrently); ``score_group`` scores one.
Neither raises for a bad model answer or a failed request: the group's ``parse_error`` says what
went wrong and its scores are ``None``. They do raise for programming errors and for running
out of device memory, which the caller must see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class GroupResult:
    """The evaluator's answer for one group.

    ``scores``: one per mask of the group, in the order given, float in [0, 1] or ``None`` where
    no usable score was read. ``cot_text``: the chain of thought (``None`` when absent).
    ``raw_text``: everything the model wrote. ``prompt``: the text part of what it was given
    (the chat-templated text for local models). ``parse_error``: a plain message, or ``None``
    when every mask got a clean score. ``seconds``: wall time spent on this group.
    """

    scores: list[float | None]
    cot_text: str | None
    raw_text: str
    prompt: str
    parse_error: str | None
    seconds: float = 0.0

    @property
    def cot(self) -> str | None:
        """Alias of ``cot_text`` (the trace field is named ``cot``)."""
        return self.cot_text


@runtime_checkable
class MaskEvaluator(Protocol):
    """What stage 2 needs from an evaluator backend.

    ``name`` identifies the model (recorded as the trace's ``model_id``), ``backend`` the kind
    (``local-internvl``, ``openai-compatible``), ``is_random`` whether its weights are random.
    """

    name: str
    backend: str
    is_random: bool

    def score_group(
        self, image_rgb: np.ndarray, question: str, masks: list[np.ndarray], cot: bool
    ) -> GroupResult:
        """Score one group. ``image_rgb`` uint8 (H, W, 3); ``masks`` bool (H, W) each."""
        ...

    def score_groups(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        """One result per group, in order; masks are bool (H, W) at the image's size."""
        ...


class EvaluatorBase:
    """The checks and ``score_group`` shared by backends: a backend implements
    :meth:`_score_checked`, the batched call on inputs :func:`check_inputs` has accepted."""

    def score_group(
        self, image_rgb: np.ndarray, question: str, masks: list[np.ndarray], cot: bool
    ) -> GroupResult:
        return self.score_groups(image_rgb, question, [list(masks)], cot)[0]

    def score_groups(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        """One result per group, in order (``[]`` for no groups); ``ValueError`` on bad shapes."""
        if not groups:
            return []
        check_inputs(image_rgb, groups)
        return self._score_checked(image_rgb, question, groups, cot)

    def _score_checked(
        self, image_rgb: np.ndarray, question: str, groups: list[list[np.ndarray]], cot: bool
    ) -> list[GroupResult]:
        raise NotImplementedError


def check_inputs(image_rgb: np.ndarray, groups: list[list[np.ndarray]]) -> None:
    """Raise ``ValueError`` unless ``image_rgb`` is (H, W, 3) and every mask is (H, W)."""
    img = np.asarray(image_rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"the evaluator needs an RGB image of shape (H, W, 3), got {img.shape}")
    for g in groups:
        if not g:
            raise ValueError("an evaluator group must hold at least one mask")
        for m in g:
            if np.shape(m) != img.shape[:2]:
                raise ValueError(
                    f"mask shape {np.shape(m)} does not match the image's {img.shape[:2]}"
                )


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A bool (H, W) mask as the uint8 (H, W, 3) picture the model sees: 255 = mask, 0 = background.

    For the model's eyes only; masks are stored as RLE, never as these pictures.
    """
    m = np.asarray(mask, dtype=bool).astype(np.uint8) * 255
    return np.repeat(m[:, :, None], 3, axis=2)
