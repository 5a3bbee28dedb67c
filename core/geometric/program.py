"""Referring programs over a scene graph, their exact execution, checking and phrasing.

A :class:`Program` names a *target description* (attribute filter) and one relation to a
uniquely described *reference* object (paper App. C: shared attribute, relative size, relative
position, ordinal). Execution is exact on the scene graph.

Relations (camera frame, see :mod:`core.geometric.scene`), with a margin ``EPS`` so that
near-ties never count:

- ``left``: ``x_a < x_ref - EPS``; ``right``: ``x_a > x_ref + EPS``;
- ``front``: ``z_a < z_ref - EPS`` (closer to the camera); ``behind``: ``z_a > z_ref + EPS``;
- ``bigger`` / ``smaller``: size ``large`` vs ``small``;
- ``same_<attr>``: equal attribute, the reference itself excluded;
- ``ordinal k from <side>``: among the objects matching the target description, ordered by
  ``x`` (left/right) or ``z`` (front/back), the k-th; consecutive objects must differ by more
  than ``EPS`` along that axis, otherwise the order is ambiguous.

The checker (:func:`check`) rejects a program as

- ``ambiguous``: the reference description does not pick exactly one object, or the program
  does not pick exactly one target;
- ``shortcut``: the target description alone (its own attributes, without the relation)
  already picks exactly one object, so the relation is unnecessary (the paper's rule);
- ``trivial``: the target is picked by absolute image position alone: for a ``left``/``right``
  relation or a left/right ordinal, the target is the leftmost/rightmost object of the whole
  scene on that side (respectively the k-th overall); likewise nearest/farthest for
  ``front``/``behind``. Shared-attribute and size questions are never trivial.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.geometric.scene import COLORS, MATERIALS, SHAPES, SIZES, Scene, SceneObject

EPS = 0.25
ATTRS = ("size", "color", "material", "shape")
ORDINAL_SIDES = ("left", "right", "front", "back")
ORDINAL_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth"}


@dataclass(frozen=True)
class Desc:
    """An attribute filter; ``None`` fields are unconstrained (``shape=None`` reads "object")."""

    size: str | None = None
    color: str | None = None
    material: str | None = None
    shape: str | None = None

    def matches(self, o: SceneObject) -> bool:
        return all(getattr(self, a) is None or getattr(self, a) == o.attr(a) for a in ATTRS)

    def select(self, scene: Scene) -> list[SceneObject]:
        return [o for o in scene.objects if self.matches(o)]


@dataclass
class Program:
    """``target`` related to ``ref`` by ``relation`` — or, with ``ordinal``, the k-th target."""

    target: Desc
    relation: str | None = None
    ref: Desc | None = None
    ordinal: int | None = None
    side: str | None = None
    family: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Program:
        return cls(
            target=Desc(**d["target"]),
            relation=d.get("relation"),
            ref=Desc(**d["ref"]) if d.get("ref") else None,
            ordinal=d.get("ordinal"),
            side=d.get("side"),
            family=d.get("family", ""),
        )


def _related(o: SceneObject, ref: SceneObject, relation: str) -> bool:
    if o.id == ref.id:
        return False
    if relation == "left":
        return o.x < ref.x - EPS
    if relation == "right":
        return o.x > ref.x + EPS
    if relation == "front":
        return o.z < ref.z - EPS
    if relation == "behind":
        return o.z > ref.z + EPS
    if relation == "bigger":
        return o.size == "large" and ref.size == "small"
    if relation == "smaller":
        return o.size == "small" and ref.size == "large"
    if relation.startswith("same_"):
        attr = relation[5:]
        return o.attr(attr) == ref.attr(attr)
    raise ValueError(f"unknown relation {relation!r}")


def _axis_key(side: str):
    return {
        "left": lambda o: o.x,
        "right": lambda o: -o.x,
        "front": lambda o: o.z,
        "back": lambda o: -o.z,
    }[side]


def _ordered(objs: list[SceneObject], side: str) -> list[SceneObject] | None:
    """Objects sorted from ``side``; ``None`` if two neighbours are within ``EPS`` (unclear order)."""
    key = _axis_key(side)
    seq = sorted(objs, key=key)
    for a, b in zip(seq, seq[1:], strict=False):
        if abs(key(a) - key(b)) <= EPS:
            return None
    return seq


def execute(scene: Scene, prog: Program) -> list[int]:
    """Ids of the objects the program refers to (exactly one for a good program)."""
    candidates = prog.target.select(scene)
    if prog.ordinal is not None:
        seq = _ordered(candidates, prog.side or "left")
        if seq is None or prog.ordinal > len(seq):
            return [o.id for o in candidates] if seq is None else []
        return [seq[prog.ordinal - 1].id]
    refs = prog.ref.select(scene) if prog.ref else []
    if len(refs) != 1:
        return (
            sorted({o.id for ref in refs for o in candidates if _related(o, ref, prog.relation)})
            or []
        )
    return [o.id for o in candidates if _related(o, refs[0], prog.relation)]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None  # "ambiguous" | "shortcut" | "trivial" | None
    target: int | None


def check(scene: Scene, prog: Program) -> Verdict:
    """Exact check of a program on a scene (rules in the module docstring)."""
    if prog.ordinal is None:
        if prog.ref is None or len(prog.ref.select(scene)) != 1:
            return Verdict(False, "ambiguous", None)
    result = execute(scene, prog)
    if len(result) != 1:
        return Verdict(False, "ambiguous", None)
    tid = result[0]
    if len(prog.target.select(scene)) == 1:
        return Verdict(False, "shortcut", tid)
    if _trivial(scene, prog, tid):
        return Verdict(False, "trivial", tid)
    return Verdict(True, None, tid)


def _trivial(scene: Scene, prog: Program, tid: int) -> bool:
    side = None
    k = 1
    if prog.ordinal is not None:
        side, k = prog.side, prog.ordinal
    elif prog.relation in ("left", "right"):
        side = prog.relation
    elif prog.relation == "front":
        side = "front"
    elif prog.relation == "behind":
        side = "back"
    if side is None:
        return False
    seq = sorted(scene.objects, key=_axis_key(side))
    return len(seq) >= k and seq[k - 1].id == tid


# -- phrasing -------------------------------------------------------------------------------

_MATERIAL_WORDS = {"metal": ("metal", "shiny", "metallic"), "rubber": ("rubber", "matte")}
_SHAPE_WORDS = {
    "cube": ("cube", "block"),
    "sphere": ("sphere", "ball"),
    "cylinder": ("cylinder",),
    None: ("object", "thing"),
}
_REL_WORDS = {
    "left": ("left of", "to the left of", "on the left side of"),
    "right": ("right of", "to the right of", "on the right side of"),
    "front": ("in front of", "closer to the camera than"),
    "behind": ("behind", "farther from the camera than"),
    "bigger": ("bigger than", "larger than"),
    "smaller": ("smaller than",),
}
_SAME = {
    "same_color": "colour",
    "same_material": "material",
    "same_shape": "shape",
    "same_size": "size",
}
_SIDE_WORDS = {
    "left": "from the left",
    "right": "from the right",
    "front": "from the front",
    "back": "from the back",
}
_FRAMES = (
    "Which object is {d}?",
    "Could you segment {d}?",
    "Please segment {d}.",
    "Where is {d} in this image?",
    "Can you find {d}?",
    "Segment {d}.",
    "Show me {d}.",
)


def describe(desc: Desc, rng: np.random.Generator, plural: bool = False) -> str:
    words = []
    if desc.size:
        words.append(desc.size)
    if desc.color:
        words.append(desc.color)
    if desc.material:
        opts = _MATERIAL_WORDS[desc.material]
        words.append(opts[int(rng.integers(len(opts)))])
    shape_opts = _SHAPE_WORDS[desc.shape]
    noun = shape_opts[int(rng.integers(len(shape_opts)))]
    if plural:
        noun = noun + ("es" if noun.endswith("s") else "s")
    return " ".join([*words, noun])


def phrase(prog: Program, rng: np.random.Generator) -> str:
    """A natural question for the program (random but seeded wording)."""
    t = describe(prog.target, rng)
    if prog.ordinal is not None:
        d = f"the {ORDINAL_WORDS[prog.ordinal]} {t} {_SIDE_WORDS[prog.side]}"
    elif prog.relation in _SAME:
        d = f"the {t} that has the same {_SAME[prog.relation]} as the {describe(prog.ref, rng)}"
    else:
        opts = _REL_WORDS[prog.relation]
        d = f"the {t} that is {opts[int(rng.integers(len(opts)))]} the {describe(prog.ref, rng)}"
    frame = _FRAMES[int(rng.integers(len(_FRAMES)))]
    q = frame.format(d=d)
    return q[0].upper() + q[1:]


# -- sampling -------------------------------------------------------------------------------


def unique_desc(scene: Scene, obj: SceneObject, rng: np.random.Generator) -> Desc | None:
    """A short attribute description that picks exactly ``obj`` (shortest first, random among equals)."""
    import itertools

    combos = []
    for r in range(1, 5):
        for attrs in itertools.combinations(ATTRS, r):
            combos.append(attrs)
    by_len: dict[int, list[tuple[str, ...]]] = {}
    for c in combos:
        by_len.setdefault(len(c), []).append(c)
    for r in sorted(by_len):
        opts = by_len[r]
        order = rng.permutation(len(opts))
        for i in order:
            d = Desc(**{a: obj.attr(a) for a in opts[i]})
            if len(d.select(scene)) == 1:
                return d
    return None


def random_program(scene: Scene, rng: np.random.Generator) -> Program:
    """A random program of one of the four families (may fail the checker)."""
    objs = scene.objects
    family = ("shared_attribute", "relative_size", "relative_position", "ordinal")[
        int(rng.integers(4))
    ]
    target = objs[int(rng.integers(len(objs)))]
    # target description: a random subset of the target's own attributes (often just its shape)
    n_attr = int(rng.choice([0, 1, 1, 2]))
    chosen = (
        list(rng.choice(["size", "color", "material"], size=n_attr, replace=False))
        if n_attr
        else []
    )
    shape = target.shape if rng.random() < 0.75 else None
    tdesc = Desc(**{a: target.attr(a) for a in chosen}, shape=shape)
    if family == "ordinal":
        side = ORDINAL_SIDES[int(rng.integers(4))]
        k = int(rng.integers(1, 4))
        return Program(tdesc, ordinal=k, side=side, family=family)
    others = [o for o in objs if o.id != target.id]
    ref_obj = others[int(rng.integers(len(others)))] if others else target
    rdesc = unique_desc(scene, ref_obj, rng) or Desc(shape=ref_obj.shape)
    if family == "shared_attribute":
        rel = ("same_color", "same_material", "same_shape", "same_size")[int(rng.integers(4))]
        attr = rel[5:]
        # the shared attribute must not also be named in the target description
        tdesc = Desc(**{a: getattr(tdesc, a) for a in ATTRS if a != attr})
    elif family == "relative_size":
        rel = ("bigger", "smaller")[int(rng.integers(2))]
        tdesc = Desc(**{a: getattr(tdesc, a) for a in ATTRS if a != "size"})
    else:
        rel = ("left", "right", "front", "behind")[int(rng.integers(4))]
    return Program(tdesc, relation=rel, ref=rdesc, family=family)


__all__ = [
    "COLORS",
    "MATERIALS",
    "SHAPES",
    "SIZES",
    "Desc",
    "Program",
    "Verdict",
    "check",
    "describe",
    "execute",
    "phrase",
    "random_program",
    "unique_desc",
]
