"""One group as the evaluator sees it, at inference and in training: the conversation, the
images and the tiling, built by one function (§4.3, App. B).

:func:`build_evaluator_input` turns (image, question, group of masks, and for training the
scores and the reasoning) into an :class:`EvaluatorInput`; :func:`encode_inputs` runs a
transformers InternVL processor over a batch of them. The local backend scores with these two;
a trainer builds its examples with the same two (``scores`` and ``reasoning`` given, the chat
ends with the answer), and the JSONL export writes the same conversation
(:func:`core.evaluator.prompt.internvl_conversations`) and the same tile budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.evaluator.base import mask_image
from core.evaluator.prompt import (
    MAX_PATCHES,
    assistant_text,
    hf_messages,
    prompt_format,
    tiles_per_image,
)


def image_kwargs(n_images: int, max_patches: int = MAX_PATCHES) -> dict[str, Any]:
    """Processor keyword arguments (GotOcr2 image processor of InternVL ``-hf``) that give each of
    ``n_images`` images at most :func:`~core.evaluator.prompt.tiles_per_image` tiles."""
    t = tiles_per_image(n_images, max_patches)
    if t == 1:
        return {"crop_to_patches": False}
    return {"crop_to_patches": True, "min_patches": 1, "max_patches": t}


@dataclass(frozen=True)
class EvaluatorInput:
    """One group: ``messages`` for the chat template (system, user, and the assistant's answer
    when ``target`` is set), ``images`` uint8 (H, W, 3) — the original, then one picture per mask
    (white = mask) —, ``image_kwargs`` for the processor, the ``prompt_format`` id."""

    messages: list[dict[str, Any]]
    images: list[np.ndarray]
    image_kwargs: dict[str, Any]
    prompt_format: str
    target: str | None = None
    n_masks: int = field(default=0)


def build_evaluator_input(
    image_rgb: np.ndarray,
    question: str,
    masks: Sequence[np.ndarray],
    *,
    cot: bool = True,
    scores: Sequence[float] | None = None,
    reasoning: str | None = None,
    max_patches: int = MAX_PATCHES,
) -> EvaluatorInput:
    """The evaluator's input for one group.

    ``image_rgb`` uint8 (H, W, 3); ``masks`` bool (H, W) each, in the order the model numbers
    them. ``scores`` (training: the masks' true IoUs, same order) adds the answer
    (:func:`core.evaluator.prompt.assistant_text`, with ``reasoning`` before it in the
    chain-of-thought format); without ``scores`` the chat ends at the user turn (inference).
    """
    masks = list(masks)
    if not masks:
        raise ValueError("an evaluator group must hold at least one mask")
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"the evaluator needs an RGB image of shape (H, W, 3), got {image.shape}")
    for m in masks:
        if np.shape(m) != image.shape[:2]:
            raise ValueError(
                f"mask shape {np.shape(m)} does not match the image's {image.shape[:2]}"
            )
    target = None
    if scores is not None:
        if len(scores) != len(masks):
            raise ValueError(f"{len(scores)} scores for a group of {len(masks)} masks")
        target = assistant_text([float(s) for s in scores], cot, reasoning)
    n_images = len(masks) + 1
    return EvaluatorInput(
        hf_messages(question, len(masks), cot, target),
        [image, *[mask_image(m) for m in masks]],
        image_kwargs(n_images, max_patches),
        prompt_format(cot, max_patches),
        target,
        len(masks),
    )


def chat_text(processor: Any, item: EvaluatorInput) -> str:
    """The chat-templated text of one input: with the generation prompt for inference, the whole
    conversation (answer included) for training. Each image stays one placeholder
    (``processor.image_token``); ``ValueError`` when the template does not place one per image."""
    text = processor.apply_chat_template(
        item.messages, add_generation_prompt=item.target is None, tokenize=False
    )
    token = getattr(processor, "image_token", "<IMG_CONTEXT>")
    n_img = len(item.images)
    if text.count(token) != n_img and text.count("<image>") == n_img:
        # older -hf templates write "<image>"; the processor expands its context token
        text = text.replace("<image>", token)
    if text.count(token) != n_img:
        raise ValueError(
            f"the chat template does not place one {token} per image "
            f"({text.count(token)} for {n_img} images)"
        )
    return text


def encode_inputs(processor: Any, items: Sequence[EvaluatorInput], **kwargs: Any) -> Any:
    """The processor's tensors (``input_ids``, ``attention_mask``, ``pixel_values``, …) for a batch
    of inputs that share one tiling (same number of images); ``kwargs`` go to the processor
    (default ``return_tensors="pt"``, ``padding=True``)."""
    if not items:
        raise ValueError("nothing to encode")
    tiling = items[0].image_kwargs
    if any(it.image_kwargs != tiling for it in items):
        raise ValueError("a batch must share one tiling; batch groups of the same size together")
    kwargs.setdefault("return_tensors", "pt")
    kwargs.setdefault("padding", True)
    return processor(
        text=[chat_text(processor, it) for it in items],
        images=[im for it in items for im in it.images],
        **tiling,
        **kwargs,
    )
