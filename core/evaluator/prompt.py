"""The evaluator's prompt, in one place (§4.3, App. B).

The model sees the original image, then each candidate of the group as a binary mask image
(white = mask, black = background, same size as the image), and the question. It answers with
one line per mask, ``Mask i: <IoU>``, with the IoU in [0, 1]; with chain of thought it first
writes its reasoning, then ``Answer:`` and the lines.
"""

from __future__ import annotations

SYSTEM = (
    "You are a mask evaluator for reasoning segmentation. You compare candidate masks for a "
    "question about an image and estimate how well each mask covers the target."
)

USER = (
    "The first image is the original image. Images 2 to {n_plus_1} are candidate masks "
    "(white = mask) numbered Mask 1 to Mask {n}.\n"
    "Question: {question}\n"
    "{instruction}"
    "For every mask give the IoU between the mask and the correct target region, a number "
    "between 0 and 1, one line per mask in the form 'Mask i: IoU'."
)

COT_INSTRUCTION = (
    "First reason step by step: which object or region does the question refer to, and how do "
    "the masks compare? Then write 'Answer:' followed by the scores.\n"
)
NO_COT_INSTRUCTION = "Answer with the scores only.\n"


def user_text(question: str, n_masks: int, cot: bool) -> str:
    """The text part of the user turn (images are passed separately, original image first)."""
    return USER.format(
        n=n_masks, n_plus_1=n_masks + 1, question=question.strip(), instruction=COT_INSTRUCTION if cot else NO_COT_INSTRUCTION
    )


def canonical_answer(scores: list[float], reasoning: str | None = None) -> str:
    """The answer format the parser reads exactly (also used for training targets)."""
    lines = "\n".join(f"Mask {i + 1}: {s:.2f}" for i, s in enumerate(scores))
    return f"{reasoning.strip()}\nAnswer:\n{lines}" if reasoning else lines
