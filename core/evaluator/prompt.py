"""The evaluator's prompt and answer format, in one place (§4.3, App. B).

What the model sees for one group of ``n`` masks (App. B: "the original image and five binary
masks"), as one user turn:

- image 1: the original image (RGB);
- images 2 … n+1: each candidate of the group as a binary mask picture of the same size,
  white (255) = mask, black (0) = background (:func:`core.evaluator.base.mask_image`);
- then the text :func:`user_text`, which numbers the masks ``Mask 1`` … ``Mask n`` in image order.

Each image is introduced as ``Image-k:`` (InternVL's own multi-image convention), so the three
renderings below say the same thing:

- :func:`hf_user_content` — content items for a transformers chat template (local InternVL);
- :func:`openai_user_content` — ``image_url`` / ``text`` parts for ``/v1/chat/completions``;
- :func:`human_value` — the InternVL fine-tuning conversation text, ``<image>`` placeholders.

Expected answer (what the parser reads exactly, and what the training export writes)::

    [reasoning …]            <- only with chain of thought
    Answer:                  <- only with chain of thought
    Mask 1: 0.83
    Mask 2: 0.05
    …

one line per mask, the estimated IoU with the target as a decimal in [0, 1] with two digits.
Without chain of thought the answer is the lines alone (:func:`canonical_answer`).
"""

from __future__ import annotations

SYSTEM = (
    "You are a mask evaluator for reasoning segmentation. You compare candidate masks for a "
    "question about an image and estimate how well each mask covers the target."
)

USER = (
    "Image-1 is the original image. Images 2 to {n_plus_1} are candidate masks (white = mask, "
    "black = background), numbered Mask 1 to Mask {n} in that order.\n"
    "Question: {question}\n"
    "{instruction}"
    "For every mask give the IoU between the mask and the region that answers the question, a "
    "number between 0 and 1, one line per mask in the form 'Mask i: IoU'."
)

COT_INSTRUCTION = (
    "First reason step by step: which object or region does the question refer to, and how do "
    "the masks compare? Then write 'Answer:' on its own line followed by the scores.\n"
)
NO_COT_INSTRUCTION = "Answer with the scores only.\n"

ANSWER_MARKER = "Answer:"

PROMPT_VERSION = 1  # bump whenever SYSTEM, USER, the instructions or the answer format change


def prompt_format(cot: bool) -> str:
    """The prompt-format id recorded in traces and training exports, e.g. ``rea2seg-v1-cot``.

    A LoRA trained on one format must be run on the same one; stage 2 refuses an evaluator that
    declares another (``prompt_format`` attribute), and the export writes it on every line.
    """
    return f"rea2seg-v{PROMPT_VERSION}-{'cot' if cot else 'nocot'}"


def image_label(k: int) -> str:
    """``"Image-k: "`` (1-based; image 1 is the original image)."""
    return f"Image-{k}: "


def user_text(question: str, n_masks: int, cot: bool) -> str:
    """The text part of the user turn (after the ``n_masks + 1`` images)."""
    return USER.format(
        n=n_masks,
        n_plus_1=n_masks + 1,
        question=" ".join(str(question).split()),
        instruction=COT_INSTRUCTION if cot else NO_COT_INSTRUCTION,
    )


def hf_user_content(question: str, n_masks: int, cot: bool) -> list[dict[str, str]]:
    """Content items of the user message for a transformers chat template.

    ``[text "Image-1: ", image, text "Image-2: ", image, …, text user_text]``; InternVL's
    template renders each image as its image placeholder followed by a newline, which gives the
    same text as :func:`human_value` once placeholders are expanded.
    """
    items: list[dict[str, str]] = []
    for k in range(1, n_masks + 2):
        items.append({"type": "text", "text": image_label(k)})
        items.append({"type": "image"})
    items.append({"type": "text", "text": user_text(question, n_masks, cot)})
    return items


def openai_user_content(image_urls: list[str], question: str, cot: bool) -> list[dict]:
    """``/v1/chat/completions`` content parts; ``image_urls[0]`` is the original image."""
    parts: list[dict] = []
    for k, url in enumerate(image_urls, start=1):
        parts.append({"type": "text", "text": image_label(k).rstrip()})
        parts.append({"type": "image_url", "image_url": {"url": url}})
    parts.append({"type": "text", "text": user_text(question, len(image_urls) - 1, cot)})
    return parts


def human_value(question: str, n_masks: int, cot: bool) -> str:
    """The human turn of an InternVL fine-tuning conversation (one ``<image>`` per image)."""
    head = "".join(f"{image_label(k)}<image>\n" for k in range(1, n_masks + 2))
    return head + user_text(question, n_masks, cot)


def canonical_answer(scores: list[float], reasoning: str | None = None) -> str:
    """The answer format of the module docstring for ``scores`` (mask order), two decimals."""
    lines = "\n".join(f"Mask {i + 1}: {float(s):.2f}" for i, s in enumerate(scores))
    if reasoning and reasoning.strip():
        return f"{reasoning.strip()}\n{ANSWER_MARKER}\n{lines}"
    return lines
