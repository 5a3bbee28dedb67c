"""Streaming read of a COCO instances file into compact records, item by item.

The file is parsed once as a stream of JSON events (``ijson``), so memory follows what is
kept, not the parse: polygons become float64 arrays (8 bytes a coordinate, about the size of
their text), other fields small tuples. Each item of ``images``, ``annotations``,
``categories`` and ``groups`` is checked on its own; a bad one becomes one line in
``CocoFile.errors`` and the others are kept. Only a file that is not JSON or not an object
with those lists raises :class:`CocoError`.

Limits (per item, before any C library sees it): nesting deeper than :data:`MAX_DEPTH`, more
than :data:`MAX_ITEM_VALUES` values in one item, more than :data:`MAX_POLYGONS` polygons or
:data:`MAX_POLYGON_POINTS` points in one segmentation. Values outside the four lists are read
past without being built.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from core.formats.sgdr import check_text, printable
from core.masks import MAX_PIXELS, MAX_RLE_CHARS

MAX_DEPTH = 16  # a COCO item nests 4 levels; deeper items are refused without being built
MAX_POLYGONS = 1_000  # polygons in one segmentation
MAX_POLYGON_POINTS = 200_000  # x, y pairs in one segmentation, all polygons together
MAX_RLE_RUNS = MAX_PIXELS + 1  # more runs than pixels cannot describe a mask
# values (numbers, strings) in one item: past this the item is refused and the rest of it read
# without being kept, so one item costs at most ~16 MB in Python objects however long it is.
# Twice the polygon points, with room for the other fields or an uncompressed RLE.
MAX_ITEM_VALUES = 2 * MAX_POLYGON_POINTS + 100_000
_LISTS = ("images", "annotations", "categories", "groups")


class CocoError(ValueError):
    """The file as a whole cannot be read as COCO instance annotations."""


class _TooDeep:
    """Stands for a value nested deeper than :data:`MAX_DEPTH` (never built)."""


TOO_DEEP = _TooDeep()


@dataclass(frozen=True)
class _TooBig:
    """An item with more than :data:`MAX_ITEM_VALUES` values: only its top-level scalars (its
    id, to name it) were kept."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class Ann:
    """One annotation as kept between the read and the import of its image."""

    key: str
    image: str
    category: str
    crowd: bool
    seg: Any  # tuple of float64 (2n,) arrays, or {"size": [h, w], "counts": str | int64 array}


@dataclass(frozen=True)
class _Refused:
    """An item refused on its own whose id could still be read: it takes part in the duplicate
    check, so that a bad twin refuses its good twin too (which one was meant is unknown)."""

    key: str


@dataclass(frozen=True)
class _Category:
    key: str
    name: str


@dataclass(frozen=True)
class ImageEntry:
    key: str
    file_name: str
    declared_hw: tuple[int, int] | None


@dataclass(frozen=True)
class GroupEntry:
    key: str
    image: str
    ann_keys: tuple[str, ...]
    description: str


@dataclass
class CocoFile:
    """The usable items of a file (keyed by their id as text) and one line per refused item.

    ``dup_*``: ids listed more than once; every item with such an id is refused, and so is
    everything that refers to it.
    """

    images: dict[str, ImageEntry] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    annotations: list[Ann] = field(default_factory=list)
    groups: list[GroupEntry] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    refused_images: dict[str, str] = field(default_factory=dict)  # key -> why
    refused_categories: dict[str, str] = field(default_factory=dict)


def id_key(value: Any) -> str:
    """An id as text: an integer (not a boolean) or a non-empty string; else ``ValueError``.

    ``1`` and ``"1"`` are the same id (the store keeps ids as text)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"id must be an integer or a string, not {_kind(value)}")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("id is an empty string")
        check_string(value, "id")
        if len(value) > 200:
            raise ValueError("id is longer than 200 characters")
        return value
    text = str(value)
    if len(text) > 200:
        raise ValueError("id is longer than 200 digits")
    return text


def check_string(value: str, key: str) -> None:
    """Refuse text no store can hold (:func:`core.formats.sgdr.check_text`), and U+FFFF: what
    an escaped unpaired surrogate reads as here."""
    check_text(value, key)
    if LONE_SURROGATE in value:
        raise ValueError(f"'{key}' contains an unpaired surrogate or U+FFFF (not valid text)")


def _kind(value: Any) -> str:
    if value is TOO_DEEP:
        return "a value nested too deeply"
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), "a number")


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string, not {_kind(value)}")
    check_string(value, key)
    return value


# A JSON escape: the surrogate ones whole (a pair, or one alone), any other as two bytes, so
# that scanning from left to right keeps "\\\\" and "\\u" apart as JSON does.
_ESCAPE = re.compile(
    rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|u[dD][c-fC-F][0-9a-fA-F]{2}|.)",
    re.DOTALL,
)
LONE_SURROGATE = "\uffff"  # what an escaped unpaired surrogate reads as (then refused)


def _mark_lone_surrogate(m: re.Match[bytes]) -> bytes:
    # only unpaired surrogate escapes match as exactly 6 bytes; pairs take 12, others 2
    return rb"\uffff" if len(m.group()) == 6 else m.group()


class _LoneSurrogates:
    """A binary file whose escaped unpaired surrogates (``"\\ud800"``) read as U+FFFF.

    The streaming parser stops at the first one (it cannot be UTF-8) where Python's ``json``
    reads it; marked this way it stays one string's problem, refused with its item
    (:func:`check_string`)."""

    _HOLD = 12  # the longest escape, a surrogate pair

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._carry = b""

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # the parser's probe for bytes or text
            return b""
        while True:
            chunk = self._raw.read(size if size and size > 0 else 1 << 16)
            buf = self._carry + chunk
            if not chunk:
                self._carry = b""
                return _ESCAPE.sub(_mark_lone_surrogate, buf)
            if b"\\" not in buf:
                self._carry = b""
                return buf
            # keep back the tail from an escape that a later read could complete; escapes are
            # found from the start of ``buf``, which is always at an escape boundary
            cut = len(buf) - self._HOLD
            for m in _ESCAPE.finditer(buf):
                if m.end() > cut:
                    cut = min(cut, m.start())
                    break
            self._carry = buf[max(cut, 0) :]
            if cut > 0:
                return _ESCAPE.sub(_mark_lone_surrogate, buf[:cut])


def _events(f: Any) -> Iterator[tuple[str, Any]]:
    """The parser's events for the binary file ``f``: its own iterator, not a wrapping
    generator (one less Python frame for each of millions of events)."""
    import ijson

    # numbers as Decimal (not float) so that 1e400 is one item's problem, not a parse error
    return iter(ijson.basic_parse(_LoneSurrogates(f), use_float=False))


def _skip(events: Iterator[tuple[str, Any]], event: str) -> None:
    """Read past the value that starts with ``event`` without building any of it."""
    depth = 1 if event in ("start_map", "start_array") else 0
    while depth:
        event, _ = next(events)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1


def _build(events: Iterator[tuple[str, Any]], event: str, value: Any) -> Any:
    """The value that starts with (``event``, ``value``), built from the events that follow.

    Iterative, so no nesting reaches Python's recursion limit. A container that starts deeper
    than :data:`MAX_DEPTH` is read past without being built and stands as :data:`TOO_DEEP` in
    its parent. Past :data:`MAX_ITEM_VALUES` values the rest is read past too and the result is
    a :class:`_TooBig` holding the top-level scalars seen.
    """
    if event == "number":
        return float(value) if type(value) is Decimal else value
    if event not in ("start_map", "start_array"):
        return value
    root: Any = {} if event == "start_map" else []
    cur, cur_list, key = root, event == "start_array", None
    parents: list[tuple[Any, bool, Any]] = []  # (container, is a list, its key) of each parent
    budget = MAX_ITEM_VALUES
    # one loop over every event of a large file: the commonest events are tested first
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event == "end_array" or event == "end_map":
            if not parents:
                return root
            cur, cur_list, key = parents.pop()
            continue
        if event == "start_array" or event == "start_map":
            if len(parents) + 1 >= MAX_DEPTH:
                _skip(events, event)
                value = TOO_DEEP
            else:
                value = [] if event == "start_array" else {}
        else:
            budget -= 1
            if budget < 0:
                depth = len(parents) + 1
                fields = (
                    {k: v for k, v in root.items() if not isinstance(v, list | dict)}
                    if isinstance(root, dict)
                    else {}
                )
                root = cur = None  # what was built of it goes now, not after the rest is read
                parents.clear()
                return _too_big(events, fields, depth)
            if type(value) is Decimal:
                value = float(value)
        if cur_list:
            cur.append(value)
        else:
            cur[key] = value
        if value is not TOO_DEEP and (event == "start_array" or event == "start_map"):
            parents.append((cur, cur_list, key))
            cur, cur_list, key = value, event == "start_array", None
    raise CocoError("the file ends inside a value")


def _too_big(events: Iterator[tuple[str, Any]], fields: dict[str, Any], depth: int) -> _TooBig:
    """Read past the rest of an item over the value budget, adding its top-level scalars."""
    key = None
    while depth:
        event, value = next(events)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
        elif depth == 1 and event == "map_key":
            key = value
        elif depth == 1 and event in ("number", "string") and key is not None:
            fields[key] = value
    return _TooBig(fields)


def read_coco(path: str | Path) -> CocoFile:
    """Read and check every item of ``path`` (see the module docstring). Raises
    :class:`CocoError` (one line) when the file as a whole is unusable, and
    :class:`FileNotFoundError` when it is missing."""
    import ijson

    p = Path(path)
    out = CocoFile()
    seen: dict[str, list[Any]] = {k: [] for k in _LISTS}
    found: set[str] = set()
    try:
        if p.is_dir():
            raise CocoError(f"{p}: is a folder, not a COCO file")
        with open(p, "rb") as f:
            events = _events(f)
            first = next(events, None)
            if first is None or first[0] != "start_map":
                raise CocoError("not COCO instance annotations (the top level is not an object)")
            for event, value in events:
                if event == "end_map":
                    break
                top = value  # a map_key at the top level
                event, value = next(events)
                if top in _LISTS and event == "start_array":
                    found.add(top)
                    _read_list(events, top, seen[top], out)
                else:
                    _skip(events, event)
    except FileNotFoundError:
        raise
    except CocoError as exc:
        raise CocoError(f"{p}: {exc}" if not str(exc).startswith(str(p)) else str(exc)) from None
    except SystemError as exc:
        # the C parser reports a failed conversion (an integer of over 4,300 digits) this way
        if not isinstance(exc.__cause__, ValueError):
            raise
        reason = " ".join(str(exc.__cause__).split()[:8])
        raise CocoError(f"{p}: not a readable JSON file ({reason} …)") from None
    except (ijson.JSONError, UnicodeDecodeError, ValueError, OSError, StopIteration) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CocoError(f"{p}: not a readable JSON file ({reason})") from None
    missing = [k for k in ("images", "annotations", "categories") if k not in found]
    if missing:
        raise CocoError(
            f"{p}: not COCO instance annotations (needs lists 'images', 'annotations', "
            f"'categories'; {', '.join(repr(m) for m in missing)} missing or not a list)"
        )
    _resolve(seen, out)
    return out


def _read_list(events: Iterator[tuple[str, Any]], top: str, seen: list[Any], out: CocoFile) -> None:
    """Build and check each item of the list ``top`` as it streams past."""
    index = 0
    for event, value in events:
        if event == "end_array":
            return
        item = _build(events, event, value)
        seen.append(_check_item(top, index, item, out))
        index += 1
    raise CocoError("the file ends inside a list")


_SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


def _item_name(top: str, index: int, item: Any) -> str:
    what = _SINGULAR.get(top, "group")
    if isinstance(item, _TooBig):
        item = item.fields
    if isinstance(item, dict):
        raw = item.get("id", item.get("ref_id")) if top == "groups" else item.get("id")
        if isinstance(raw, str) and raw.strip():
            return f"{what} {printable(raw, 60)}"  # escaped when it holds what a store refuses
        try:
            return f"{what} {printable(id_key(raw), 60)}"
        except ValueError:
            pass
    return f"{what} #{index}"


def _check_item(top: str, index: int, item: Any, out: CocoFile) -> Any:
    """The compact entry for one item, or ``None`` after reporting why it is refused."""
    name = _item_name(top, index, item)
    try:
        if isinstance(item, _TooBig):
            item = item.fields
            raise ValueError(f"more than {MAX_ITEM_VALUES} values in one item")
        if not isinstance(item, dict):
            raise ValueError(f"not a JSON object ({_kind(item)})")
        if top == "images":
            return _image(item)
        if top == "categories":
            key = id_key(item.get("id"))
            label = item.get("name")
            return _Category(key, key if label is None else _text(label, "name"))
        if top == "annotations":
            return _annotation(item)
        return _group(item, index)
    except ValueError as exc:
        out.errors.append((name, str(exc)))
    except (TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        out.errors.append((name, f"malformed entry ({type(exc).__name__})"))
    if isinstance(item, dict) and top != "groups":
        try:
            return _Refused(id_key(item.get("id")))
        except ValueError:
            return None
    return None


def _image(item: dict[str, Any]) -> ImageEntry:
    key = id_key(item.get("id"))
    file_name = _text(item.get("file_name"), "file_name")
    if not file_name.strip():
        raise ValueError("'file_name' is empty")
    h, w = item.get("height"), item.get("width")
    declared = None
    if h is not None or w is not None:
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (h, w)):
            raise ValueError("'height' and 'width' must be positive integers when given")
        declared = (h, w)
    return ImageEntry(key, file_name, declared)


def _annotation(item: dict[str, Any]) -> Ann:
    key = id_key(item.get("id"))
    try:
        image = id_key(item.get("image_id"))
    except ValueError as exc:
        raise ValueError(f"image_id: {exc}") from None
    try:
        category = id_key(item.get("category_id"))
    except ValueError as exc:
        raise ValueError(f"category_id: {exc}") from None
    crowd = item.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, float):
        raise ValueError("'iscrowd' must be 0 or 1")
    seg = None if crowd else compact_segmentation(item.get("segmentation"))
    return Ann(key, image, category, bool(crowd), seg)


def _group(item: dict[str, Any], index: int) -> GroupEntry:
    key = id_key(item.get("id", item.get("ref_id")))
    try:
        image = id_key(item.get("image_id"))
    except ValueError as exc:
        raise ValueError(f"image_id: {exc}") from None
    anns = item.get("ann_ids", item.get("ann_id"))
    anns = anns if isinstance(anns, list) else [anns]
    if not anns or anns == [None]:
        raise ValueError("needs a list of ann_ids")
    try:
        ann_keys = tuple(id_key(a) for a in anns)
    except ValueError as exc:
        raise ValueError(f"ann_ids: {exc}") from None
    if len(set(ann_keys)) != len(ann_keys):
        raise ValueError("ann_ids lists an annotation twice")
    desc = item.get("description")
    if desc is None and isinstance(item.get("sentences"), list) and item["sentences"]:
        first = item["sentences"][0]
        desc = first.get("sent", first.get("raw")) if isinstance(first, dict) else first
    desc = "" if desc is None else _text(desc, "description")
    return GroupEntry(key, image, ann_keys, desc.strip())


_NUMBER_TYPES = {int, float}


def compact_segmentation(seg: Any) -> Any:
    """A segmentation checked for shape and types (not yet against an image) and made compact.

    Polygons → a tuple of float64 arrays; uncompressed RLE counts → an int64 array. Raises
    ``ValueError`` with a one-line reason."""
    if seg is TOO_DEEP:
        raise ValueError(f"segmentation nested deeper than {MAX_DEPTH} levels")
    if isinstance(seg, list):
        if not seg:
            raise ValueError("empty polygon list")
        if len(seg) > MAX_POLYGONS:
            raise ValueError(f"{len(seg)} polygons; at most {MAX_POLYGONS} per annotation")
        if sum(len(p) if isinstance(p, list) else 0 for p in seg) > 2 * MAX_POLYGON_POINTS:
            raise ValueError(f"more than {MAX_POLYGON_POINTS} polygon points in one annotation")
        polys = []
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                raise ValueError("a polygon must be a flat list of at least 3 x, y pairs")
            if not set(map(type, poly)) <= _NUMBER_TYPES:  # bool is not a number here
                raise ValueError("polygon coordinates must be numbers")
            try:
                arr = np.array(poly, dtype=np.float64)
            except OverflowError:
                raise ValueError("polygon coordinates must be finite numbers") from None
            if not np.isfinite(arr).all():
                raise ValueError("polygon coordinates must be finite numbers")
            polys.append(arr)
        return tuple(polys)
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        size = seg["size"]
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
        ):
            raise ValueError("RLE 'size' must be [height, width] in whole pixels")
        counts = seg["counts"]
        if isinstance(counts, list):
            if len(counts) > MAX_RLE_RUNS:
                raise ValueError("uncompressed RLE with more runs than pixels")
            if not all(type(v) is int and 0 <= v <= MAX_PIXELS for v in counts):
                raise ValueError("uncompressed RLE counts must be non-negative integers")
            return {"size": list(size), "counts": np.array(counts, dtype=np.int64)}
        if isinstance(counts, str):
            if len(counts) > MAX_RLE_CHARS:
                raise ValueError(f"RLE counts over the {MAX_RLE_CHARS}-character limit")
            if not counts.isascii():
                raise ValueError("RLE counts must be ASCII")
            return {"size": list(size), "counts": counts}
        raise ValueError("RLE counts must be a list or a string")
    raise ValueError("segmentation must be a polygon list or an RLE dict")


def _resolve(seen: dict[str, list[Any]], out: CocoFile) -> None:
    """Refuse every id listed twice and every item that refers to a refused one."""

    def keys(entries: list[Any]) -> list[str]:
        return [e.key for e in entries if e is not None]

    def twice(entries: list[Any]) -> set[str]:
        once: set[str] = set()
        dup: set[str] = set()
        for k in keys(entries):
            (dup if k in once else once).add(k)
        return dup

    dup_cats = twice(seen["categories"])
    for k in sorted(dup_cats):
        n = keys(seen["categories"]).count(k)
        out.errors.append((f"category {printable(k, 60)}", f"id listed {n} times; none kept"))
    names: dict[str, list[str]] = {}
    for e in seen["categories"]:
        if e is None:
            continue
        if e.key in dup_cats:
            out.refused_categories[e.key] = "is listed more than once in the file"
        elif isinstance(e, _Refused):
            out.refused_categories[e.key] = "was refused (see above)"
        else:
            out.categories[e.key] = e.name
            names.setdefault(e.name, []).append(e.key)
    for name, ids in names.items():
        if len(ids) > 1:  # two ids, one label: their targets could not be told apart
            shown = ", ".join(printable(i, 30) for i in ids)
            out.errors.append(
                (f"category {printable(name, 60)!r}", f"name used by ids {shown}; none kept")
            )
            for i in ids:
                del out.categories[i]
                out.refused_categories[i] = f"shares its name {printable(name, 60)!r}"

    dup_imgs = twice(seen["images"])
    for k in sorted(dup_imgs):
        n = keys(seen["images"]).count(k)
        out.errors.append((f"image {printable(k, 60)}", f"id listed {n} times; none kept"))
    for e in seen["images"]:
        if e is None:
            continue
        if e.key in dup_imgs:
            out.refused_images[e.key] = "is listed more than once in the file"
        elif isinstance(e, _Refused):
            out.refused_images[e.key] = "was refused (see above)"
        else:
            out.images[e.key] = e

    dup_anns = twice(seen["annotations"])
    for k in sorted(dup_anns):
        n = keys(seen["annotations"]).count(k)
        out.errors.append((f"annotation {printable(k, 60)}", f"id listed {n} times; none kept"))
    out.annotations = [
        e for e in seen["annotations"] if isinstance(e, Ann) and e.key not in dup_anns
    ]

    dup_groups = twice(seen["groups"])
    for k in sorted(dup_groups):
        n = keys(seen["groups"]).count(k)
        out.errors.append((f"group {printable(k, 60)}", f"id listed {n} times; none kept"))
    out.groups = [e for e in seen["groups"] if e is not None and e.key not in dup_groups]
