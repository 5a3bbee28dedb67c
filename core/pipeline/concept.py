"""The concept origin (NOT from the paper; off by default): a fourth candidate origin.

A phrase naming what the question asks for prompts SAM 3 (text prompt, transformers
``Sam3Model``, :mod:`core.models.sam3_text`); every instance it returns, best first, and — when
it returns two or more — their union join the candidate set with origin ``concept``. The phrase
is, by ``concept_phrase``:

- ``answer``: the MLLM's generated answer with its template words removed (``Sure, it is
  [SEG].`` names nothing and leaves an empty phrase); an empty answer falls back to the question;
- ``question``: the question's noun phrase, by a word heuristic (:func:`question_phrase`).

Enabled by the stage-1 settings ``concept_origin`` (with ``concept_model``, a SAM 3 checkpoint
directory) and recorded in the trace (``PipelineTrace.concept``: phrase, its source, model,
instance scores).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np

CONCEPT_PHRASES = ("answer", "question")
MAX_SEGMENTERS = 2
"""SAM 3 checkpoints kept loaded at once (least recently used dropped). Not from the paper."""

_TEMPLATE = re.compile(
    r"\[SEG\]|<[^>]*>|\b(?:sure|okay|ok|yes|it is|it's|this is|that is|the answer is|"
    r"the segmentation result is|here is|here it is)\b",
    re.IGNORECASE,
)
_WH = {"what", "which", "where", "who", "whom", "whose", "how", "why", "when"}
_FILLER = {
    "please", "segment", "find", "show", "identify", "locate", "highlight", "mark", "can",
    "could", "would", "you", "me", "is", "are", "was", "were", "be", "do", "does", "the", "a",
    "an", "of", "in", "this", "that", "these", "those", "image", "picture", "photo", "one",
    "thing", "object", "part", "item", "region", "there",
}  # fmt: skip
_STOP = {
    "is", "are", "was", "were", "that", "which", "who", "whose", "used", "can", "could",
    "would", "will", "should", "to", "in", "on", "at", "of", "for", "with", "near", "by",
    "from", "under", "over", "behind", "beside", "between", "and", "or", "but", "if", "when",
    "where", "has", "have", "had", "most", "closest", "nearest", "farthest", "left", "right",
}  # fmt: skip


class ConceptSegmenter(Protocol):
    name: str

    def segment(self, image_rgb: np.ndarray, text: str) -> tuple[list[np.ndarray], list[float]]:
        """bool (H, W) masks of every instance of ``text`` and their scores, best first."""


def answer_phrase(generated_text: str) -> str:
    """The MLLM's answer without template words, brackets and punctuation (may be empty)."""
    text = _TEMPLATE.sub(" ", generated_text or "")
    text = re.sub(r"[^\w\s'-]", " ", text)
    return " ".join(text.split())


def question_phrase(question: str) -> str:
    """A noun phrase of the question (a word heuristic, not from the paper): the words after
    its question and filler words up to the first stop word ("Which cup is closest to the
    plate?" → ``cup``; "Please segment the red car in this image." → ``red car``); when that is
    empty, the last run of content words ("What is the thing used to cut bread?" → ``cut
    bread``). Empty when nothing is left."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", question or "")
    lower = [w.lower() for w in words]
    i = 0
    while i < len(lower) and (lower[i] in _WH or lower[i] in _FILLER):
        i += 1
    j = i
    while j < len(lower) and lower[j] not in _STOP:
        j += 1
    head = words[i:j]
    if head:
        return " ".join(head)
    tail: list[str] = []
    for w in reversed(words):  # no phrase up front: the last content words
        if w.lower() in _STOP or w.lower() in _FILLER:
            if tail:
                break
            continue
        tail.insert(0, w)
    return " ".join(tail)


def concept_phrase(source: str, generated_text: str, question: str) -> tuple[str, str]:
    """``(phrase, source used)``; ``answer`` falls back to ``question`` when it names nothing."""
    if source not in CONCEPT_PHRASES:
        raise ValueError(f"concept_phrase must be one of {CONCEPT_PHRASES}, got {source!r}")
    if source == "answer" and (p := answer_phrase(generated_text)):
        return p, "answer"
    return question_phrase(question), "question"


def concept_items(
    segmenter: ConceptSegmenter, image_rgb: np.ndarray, phrase: str, max_instances: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The concept candidates (items as :func:`core.pipeline.candidates.build_candidates` reads
    them: the instances best first, then their union when there are two or more; a union's score
    is the best instance's) and what the trace records of them."""
    record: dict[str, Any] = {"phrase": phrase, "model": str(getattr(segmenter, "name", "?"))}
    if not phrase:
        return [], {**record, "scores": [], "union": False, "note": "no phrase"}
    masks, scores = segmenter.segment(image_rgb, phrase)
    masks, scores = list(masks)[:max_instances], [float(s) for s in scores][:max_instances]
    items: list[dict[str, Any]] = [
        {"mask": np.asarray(m, dtype=bool), "score": s, "stability": None}
        for m, s in zip(masks, scores, strict=True)
    ]
    union = len(items) >= 2
    if union:
        u = np.logical_or.reduce([it["mask"] for it in items])
        items.append({"mask": u, "score": max(scores), "stability": None})
    return items, {**record, "scores": scores, "union": union}


_cache: OrderedDict[tuple[str, float, str], ConceptSegmenter] = OrderedDict()
_cache_lock = threading.Lock()


def load_concept_segmenter(
    path: str, threshold: float = 0.5, device: str = "cpu"
) -> ConceptSegmenter:
    """The SAM 3 checkpoint at ``path`` returning instances whose detection score is at least
    ``threshold`` (loaded once per path and threshold, at most :data:`MAX_SEGMENTERS` kept)."""
    from core.models.sam3_text import load_sam3

    key = (str(path), float(threshold), device)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        seg = load_sam3(path, device=device, threshold=threshold, setting="concept_model")
        _cache[key] = seg
        while len(_cache) > MAX_SEGMENTERS:
            _cache.popitem(last=False)
        return seg
