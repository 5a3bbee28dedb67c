"""The evaluator's prompt and answer format, in one place (§4.3, App. B).

What the model sees for one group of ``n`` masks (App. B: "the original image and five binary
masks"): the system turn :data:`SYSTEM`, then one user turn:

- image 1: the original image (RGB);
- images 2 … n+1: each candidate of the group as a binary mask picture of the same size,
  white (255) = mask, black (0) = background (:func:`core.evaluator.base.mask_image`);
- then the text :func:`user_text`, which numbers the masks ``Mask 1`` … ``Mask n`` in image order.

Each image is introduced as ``Image-k:`` (InternVL's own multi-image convention), so the
renderings below say the same thing, system turn included (training and inference see the same
conversation; :func:`core.evaluator.inputs.build_evaluator_input` adds the images and tiling):

- :func:`hf_user_content` — content items for a transformers chat template (local InternVL);
- :func:`openai_user_content` — ``image_url`` / ``text`` parts for ``/v1/chat/completions``;
- :func:`human_value` — the InternVL fine-tuning conversation text, ``<image>`` placeholders;
  :func:`internvl_conversations` — the whole fine-tuning conversation (system, human, gpt);
- :func:`hf_messages` — the whole chat (system, user, and the answer when training).

Image tiling is part of the format too: a group's images share a budget of ``max_patches``
tiles (InternVL's ``max_dynamic_patch``, 12), ``max_patches // images`` per image at most
(InternVL's own multi-image recipe; :func:`tiles_per_image`), a thumbnail added to any image
cut into more than one tile. :func:`prompt_format` names the whole format.

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

import re

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

PROMPT_VERSION = 2
"""Bump whenever SYSTEM, USER, the instructions, the answer format or the tiling rule change.
v1: no system turn in the training export, InternVL's tiling there but 12 tiles per image at
inference; v2: the system turn and the shared tile budget on both sides."""

MAX_PATCHES = 12
"""Tiles a group's images share (InternVL's ``max_dynamic_patch``, its usual 12); each image
gets ``max_patches // images`` at most (:func:`tiles_per_image`). Setting ``max_patches``."""

_FORMAT = re.compile(r"^rea2seg-v(?P<version>\d+)-(?P<cot>cot|nocot)(?:-tiles(?P<tiles>\d+))?$")


def prompt_format(cot: bool, max_patches: int = MAX_PATCHES) -> str:
    """The prompt-format id recorded in traces, training exports and adapter declarations, e.g.
    ``rea2seg-v2-cot-tiles12`` (prompt version, chain of thought or not, tile budget per group).

    A LoRA trained on one format must be run on the same one: both evaluator backends refuse an
    adapter that declares another (:mod:`core.evaluator.adapter`), and the export writes it on
    every line.
    """
    return f"rea2seg-v{PROMPT_VERSION}-{'cot' if cot else 'nocot'}-tiles{int(max_patches)}"


def parse_prompt_format(fmt: str) -> tuple[int, bool, int | None]:
    """``(version, cot, max_patches)`` of a format id (``max_patches`` ``None`` for v1 ids,
    which did not name it); ``ValueError`` for anything else."""
    m = _FORMAT.match(str(fmt).strip())
    if m is None:
        raise ValueError(f"{fmt!r} is not a prompt format id (like {prompt_format(True)!r})")
    tiles = m["tiles"]
    return int(m["version"]), m["cot"] == "cot", None if tiles is None else int(tiles)


def tiles_per_image(n_images: int, max_patches: int = MAX_PATCHES) -> int:
    """At most this many tiles per image for a group of ``n_images`` images (≥ 1)."""
    if int(max_patches) < 1:
        raise ValueError(f"max_patches must be at least 1, got {max_patches}")
    return max(1, int(max_patches) // max(1, int(n_images)))


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


def assistant_text(scores: list[float], cot: bool, reasoning: str | None = None) -> str:
    """The answer a training conversation ends with: the scores (:func:`canonical_answer`), after
    the reasoning and ``Answer:`` in the chain-of-thought format. Without a reasoning text the
    chain-of-thought answer starts at ``Answer:``."""
    if not cot:
        return canonical_answer(scores)
    if reasoning and reasoning.strip():
        return canonical_answer(scores, reasoning)
    return f"{ANSWER_MARKER}\n{canonical_answer(scores)}"


def hf_messages(
    question: str, n_masks: int, cot: bool, answer: str | None = None
) -> list[dict[str, object]]:
    """The chat for a transformers chat template: system, user (:func:`hf_user_content`) and,
    when ``answer`` is given (training), the assistant's turn."""
    messages: list[dict[str, object]] = [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
        {"role": "user", "content": hf_user_content(question, n_masks, cot)},
    ]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def openai_messages(image_urls: list[str], question: str, cot: bool) -> list[dict[str, object]]:
    """``/v1/chat/completions`` messages: the system turn and :func:`openai_user_content`."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": openai_user_content(image_urls, question, cot)},
    ]


def internvl_conversations(
    question: str, n_masks: int, cot: bool, answer: str
) -> list[dict[str, str]]:
    """InternVL fine-tuning ``conversations``: system, human (:func:`human_value`), gpt."""
    return [
        {"from": "system", "value": SYSTEM},
        {"from": "human", "value": human_value(question, n_masks, cot)},
        {"from": "gpt", "value": answer},
    ]
