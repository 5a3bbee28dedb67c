"""Generator training data from the geometric split: the dataset mix and the grounding stage.

The paper trains the LLaVA generator on a mixture (App. B): semantic segmentation (COCO-Stuff,
PASCAL-Part), referring segmentation (RefCOCO/+/g), reasoning segmentation (ReasonSeg) and VQA
(LLaVA-Instruct-150K) in the ratio 8 : 36 : 3 : 1 (:data:`PAPER_MIX`). Here every kind is made
from the scene graphs of a geometric *training* split (:mod:`core.training.splits`). The mapping
is our choice, not from the paper:

- ``semantic``: all objects of one shape ("What is cubes in this image? …", LISA's phrase
  wording) → the union of their instance masks;
- ``referring``: the shortest attribute description that picks one object ("the red cube") →
  its mask;
- ``reasoning``: the split's program-checked relational questions (App. C families) → the
  target's mask;
- ``vqa``: a question answered in words from the scene graph (below), no mask.

The grounding stage (``stage="grounding"``) comes first for a model trained from scratch, in
LLaVA's own order (alignment, then instruction data) and with text targets only (not from the
paper, which starts from a pretrained LLaVA): ``caption`` (every object, left to right),
``what_at`` ("What is at the top left?"), ``where_is`` ("Where is the red cube?" → "top left"),
``attribute`` ("What colour is the large cube?") and ``count``. Positions are the 3 × 3 cell
of the object's mask centroid (rows top/middle/bottom, columns left/center/right).

Segmentation samples are worded as LISA's validation words them (:func:`core.models.lisa.lisa_query`)
inside the model's prompt template and answered with its ``answer_template`` (``"[SEG]."``),
so training and :class:`core.models.lisa.LisaPromptModel` see the same token sequence.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.geometric.program import Desc, describe, unique_desc
from core.geometric.render import render
from core.geometric.scene import Scene
from core.training.generator_settings import (  # noqa: F401  (re-exported)
    GROUNDING_KINDS,
    GROUNDING_MIX,
    KINDS,
    PAPER_MIX,
    parse_mix,
)

ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_ATTR_QUESTION = {
    "color": "What colour is the {d}?",
    "shape": "What shape is the {d}?",
    "material": "What material is the {d}?",
    "size": "What size is the {d}?",
}
_SEG_KINDS = {"semantic", "referring", "reasoning"}
_WORD = re.compile(r"\w+|[^\w\s]+")  # the split of tokenizers' Whitespace pre-tokenizer


@dataclass(frozen=True)
class GeneratorSample:
    """One training sample. image: uint8 (H, W, 3) RGB; question: the user's words (already in
    LISA's wording for segmentation kinds); answer: the assistant's text (``[SEG]`` for
    segmentation kinds); mask: bool (H, W) target at the image's resolution, or None."""

    kind: str
    image: np.ndarray
    question: str
    answer: str
    mask: np.ndarray | None
    scene_id: str

    def __post_init__(self) -> None:
        if self.mask is not None and self.mask.shape != self.image.shape[:2]:
            raise ValueError(f"mask {self.mask.shape} does not match image {self.image.shape}")


class SceneBank:
    """The scene graphs (with their checked questions) of a geometric split folder; images and
    instance masks are rendered on demand (the renderer is exact and deterministic) and the last
    ``cache`` renders are kept."""

    def __init__(self, split_dir: str | Path, cache: int = 64) -> None:
        files = sorted((Path(split_dir) / "scenes").glob("*.json"))
        if not files:
            raise ValueError(f"'{split_dir}' has no scenes/*.json (a geometric split folder)")
        self.graphs = [json.loads(f.read_text(encoding="utf-8")) for f in files]
        self._cache: OrderedDict[int, tuple[Scene, np.ndarray, dict[int, np.ndarray]]] = (
            OrderedDict()
        )
        self._size = cache

    def __len__(self) -> int:
        return len(self.graphs)

    def get(self, i: int) -> tuple[Scene, np.ndarray, dict[int, np.ndarray]]:
        """(scene, uint8 RGB image (H, W, 3), {object id: bool mask (H, W)}) of scene ``i``."""
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit
        scene = Scene.from_dict(self.graphs[i])
        img, masks = render(scene)
        self._cache[i] = (scene, img, masks)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return scene, img, masks

    def questions(self, i: int) -> list[dict[str, Any]]:
        return list(self.graphs[i].get("questions", []))


def cell_of(mask: np.ndarray) -> tuple[str, str]:
    """(row word, column word) of the 3 × 3 cell holding the mask's centroid."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    r = min(int(3 * ys.mean() / h), 2) if ys.size else 1
    c = min(int(3 * xs.mean() / w), 2) if xs.size else 1
    return ROWS[r], COLS[c]


def full_name(o: Any) -> str:
    """``"large red metal cube"``: every attribute of a scene object."""
    return f"{o.size} {o.color} {o.material} {o.shape}"


def _visible(scene: Scene, masks: dict[int, np.ndarray]) -> list[Any]:
    return [o for o in scene.objects if masks[o.id].any()]


def _left_to_right(objs: list[Any], masks: dict[int, np.ndarray]) -> list[Any]:
    return sorted(objs, key=lambda o: float(np.nonzero(masks[o.id])[1].mean()))


def _list(objs: list[Any]) -> str:
    return " , ".join(full_name(o) for o in objs) if objs else "nothing"


def text_sample(
    kind: str, scene: Scene, masks: dict[int, np.ndarray], rng: np.random.Generator
) -> tuple[str, str]:
    """(question, answer) of a text-only grounding / VQA ``kind`` (module docstring)."""
    objs = _visible(scene, masks)
    if kind == "caption":
        return "Describe the image briefly.", _list(_left_to_right(objs, masks))
    if kind == "what_at":
        r, c = ROWS[int(rng.integers(3))], COLS[int(rng.integers(3))]
        here = [o for o in objs if cell_of(masks[o.id]) == (r, c)]
        return f"What is at the {r} {c}?", _list(_left_to_right(here, masks))
    if kind == "count":
        shape = ("cube", "sphere", "cylinder")[int(rng.integers(3))]
        n = sum(o.shape == shape for o in objs)
        return f"How many {shape}s are there?", NUMBERS[min(n, len(NUMBERS) - 1)]
    o = objs[int(rng.integers(len(objs)))]
    desc = unique_desc(scene, o, rng) or Desc(**{a: o.attr(a) for a in ("size", "color", "shape")})
    if kind == "where_is":
        r, c = cell_of(masks[o.id])
        return f"Where is the {describe(desc, rng)}?", f"{r} {c}"
    if kind == "attribute":
        attr = ("color", "shape", "material", "size")[int(rng.integers(4))]
        return _ATTR_QUESTION[attr].format(d=describe(desc, rng)), o.attr(attr)
    raise ValueError(f"unknown text sample kind {kind!r}")


def seg_sample(
    kind: str,
    scene: Scene,
    masks: dict[int, np.ndarray],
    questions: list[dict[str, Any]],
    rng: np.random.Generator,
) -> tuple[str, bool, np.ndarray] | None:
    """(text, is_sentence, bool mask) of a segmentation ``kind``, or None when the scene has
    nothing of that kind (e.g. no checked question)."""
    from core.geometric.scene import SHAPES

    objs = _visible(scene, masks)
    if kind == "semantic":
        present = [s for s in SHAPES if any(o.shape == s for o in objs)]
        shape = present[int(rng.integers(len(present)))]
        union = np.zeros_like(next(iter(masks.values())))
        for o in objs:
            if o.shape == shape:
                union |= masks[o.id]
        return describe(Desc(shape=shape), rng, plural=True), False, union
    if kind == "referring":
        o = objs[int(rng.integers(len(objs)))]
        desc = unique_desc(scene, o, rng)
        if desc is None:
            return None
        return f"the {describe(desc, rng)}", False, masks[o.id]
    if kind == "reasoning":
        if not questions:
            return None
        q = questions[int(rng.integers(len(questions)))]
        return str(q["question"]), True, masks[int(q["target"])]
    raise ValueError(f"unknown segmentation kind {kind!r}")


def make_sample(
    bank: SceneBank, index: int, mix: dict[str, float], seed: int, answer_template: str
) -> GeneratorSample:
    """The ``index``-th sample of a run: a pure function of (``index``, ``seed``) — the kind by
    ``mix``, a scene, then the question (every process of a multi-GPU run agrees)."""
    from core.models.lisa import lisa_query

    rng = np.random.default_rng([int(seed), int(index)])
    kinds, probs = list(mix), np.array(list(mix.values()))
    for _ in range(20):
        kind = kinds[int(rng.choice(len(kinds), p=probs))]
        si = int(rng.integers(len(bank)))
        scene, img, masks = bank.get(si)
        if not _visible(scene, masks):
            continue
        if kind in _SEG_KINDS:
            got = seg_sample(kind, scene, masks, bank.questions(si), rng)
            if got is None:
                continue
            text, is_sentence, mask = got
            return GeneratorSample(
                kind, img, lisa_query(text, is_sentence), answer_template, mask, scene.id
            )
        if kind == "vqa":  # the instruction-data kinds, one at random
            kind_text = ("what_at", "where_is", "attribute", "count")[int(rng.integers(4))]
        else:
            kind_text = kind
        question, answer = text_sample(kind_text, scene, masks, rng)
        return GeneratorSample(kind, img, question, answer, None, scene.id)
    raise RuntimeError("could not draw a sample in 20 tries (is the split empty?)")


def split_vocabulary(bank: SceneBank, n_scenes: int = 200, seed: int = 0) -> list[str]:
    """Every word the samples of a split can use (questions, answers, LISA's prompt and
    wording), in a fixed order: the vocabulary of a tokenizer made for a model trained from
    scratch. Words are split as tokenizers' ``Whitespace`` pre-tokenizer splits them."""
    from core.geometric.program import _FRAMES, _REL_WORDS, _SAME, _SHAPE_WORDS, _SIDE_WORDS
    from core.geometric.scene import COLORS, MATERIALS, SHAPES, SIZES
    from core.models.lisa import ANSWER_TEMPLATE, LISA_PHRASE, LISA_SENTENCE, LLAVA_V1_SYSTEM

    texts = [LLAVA_V1_SYSTEM, "USER: ASSISTANT:", LISA_PHRASE, LISA_SENTENCE, ANSWER_TEMPLATE]
    texts += list(_FRAMES) + [w for v in _REL_WORDS.values() for w in v] + list(_SAME.values())
    texts += list(_SIDE_WORDS.values()) + [w for v in _SHAPE_WORDS.values() for w in v]
    texts += [*COLORS, *MATERIALS, *SHAPES, *SIZES, *ROWS, *COLS, *NUMBERS, "nothing", "first"]
    texts += [*_ATTR_QUESTION.values(), "Describe the image briefly.", "What is at the ?"]
    texts += ["How many cubes spheres cylinders are there?", "Where is the ?", "second third"]
    texts += [f"{w}s {w}es" for v in _SHAPE_WORDS.values() for w in v]
    rng = np.random.default_rng(seed)
    for i in range(min(n_scenes, len(bank))):
        texts += [str(q["question"]) for q in bank.questions(i)]
    texts += [describe(Desc(), rng)]
    seen: dict[str, None] = {}
    for t in texts:
        for w in _WORD.findall(t.replace("{d}", " ").replace("[SEG]", " ")):
            seen.setdefault(w, None)
            seen.setdefault(w.lower(), None)
    return list(seen)
