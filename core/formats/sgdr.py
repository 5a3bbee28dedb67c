"""The SGDR interchange JSON: the project's own format for samples with masks.

::

    {"version": 1,
     "samples": [{"id": "clevr-0001-q0",            # unique within the file
                  "image": "images/0001.png",       # path relative to the JSON file
                  "question": "Which object is …?",
                  "category": "geometric",          # discriminative|geometric|spatial|multi_step|reasonseg|other
                  "source": "rea2seg-geometric",
                  "status": "pending",              # pending|verified|rejected|flagged
                  "mask": {"size": [h, w], "counts": "…"},   # COCO compressed RLE
                  "ignore": null}]}                 # optional RLE of pixels excluded from metrics

Reading validates each entry on its own: a bad entry is reported with its index/id and reason
and the others are still returned. Writing uses a fixed key order and layout, so an export →
import → export cycle is byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.fileio import atomic_write
from core.masks import MaskError, check_rle
from core.vocab import CATEGORIES, STATUSES

SGDR_VERSION = 1
_KEYS = ("id", "image", "question", "category", "source", "status", "mask", "ignore")


class SgdrError(ValueError):
    """The file as a whole cannot be read (not JSON, wrong top-level shape or version)."""


@dataclass
class SgdrSample:
    id: str
    image: str
    question: str
    category: str
    source: str
    status: str
    mask: dict[str, Any] | None
    ignore: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _KEYS}


def _check_rle(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    check_rle(value)  # raises MaskError with the reason; the store decodes it once, on insert
    return {
        "size": [int(value["size"][0]), int(value["size"][1])],
        "counts": _counts_str(value["counts"]),
    }


def _counts_str(counts: str | bytes) -> str:
    return counts.decode("ascii") if isinstance(counts, bytes) else counts


def check_text(value: str, key: str) -> None:
    """Refuse text no store can hold: NUL characters and unpaired UTF-16 surrogates."""
    if "\x00" in value:
        raise ValueError(f"'{key}' contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"'{key}' contains an unpaired surrogate (not valid Unicode)") from None


def parse_sample(entry: Any) -> SgdrSample:
    """Validate one entry; raises ``ValueError`` with a plain reason."""
    if not isinstance(entry, dict):
        raise ValueError("entry is not a JSON object")
    for key in ("id", "image", "question"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ValueError(f"'{key}' must be a non-empty string")
        check_text(entry[key], key)
    category = entry.get("category", "other")
    if not isinstance(category, str) or category not in CATEGORIES:
        raise ValueError(f"unknown category {_short(category)}")
    status = entry.get("status", "pending")
    if not isinstance(status, str) or status not in STATUSES:
        raise ValueError(f"unknown status {_short(status)}")
    source = entry.get("source", "")
    if not isinstance(source, str):
        raise ValueError("'source' must be a string")
    check_text(source, "source")
    try:
        mask = _check_rle(entry.get("mask"), "mask")
        ignore = _check_rle(entry.get("ignore"), "ignore")
    except MaskError as exc:
        raise ValueError(f"bad mask: {exc}") from exc
    if mask is None:
        raise ValueError("'mask' is missing")
    if ignore is not None and ignore["size"] != mask["size"]:
        raise ValueError(f"ignore size {ignore['size']} != mask size {mask['size']}")
    return SgdrSample(
        entry["id"], entry["image"], entry["question"], category, source, status, mask, ignore
    )


def printable(text: str, n: int = 200) -> str:
    """``text`` for a one-line message: as is when printable, else escaped; at most ``n`` chars."""
    shown = text if text.isprintable() else ascii(text)[1:-1]
    return shown if len(shown) <= n else shown[: n - 1] + "…"


def _short(value: Any, n: int = 60) -> str:
    """A bounded ``repr`` for messages (surrogates and control characters escaped)."""
    if isinstance(value, str):
        return "'" + printable(value, n) + "'"
    try:
        text = ascii(value)
    except RecursionError:
        text = "<deeply nested value>"
    return text if len(text) <= n else text[: n - 1] + "…"


def read_sgdr(path: str | Path) -> tuple[list[SgdrSample], list[tuple[str, str]]]:
    """(valid samples, [(entry name, reason)] for the entries that were skipped).

    Raises :class:`SgdrError` (one line) only when the file as a whole cannot be read: missing,
    not UTF-8 JSON, nested too deeply to parse, or not ``{"version": 1, "samples": [...]}``.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SgdrError(f"{p}: file not found") from exc
    except IsADirectoryError as exc:
        raise SgdrError(f"{p}: is a folder, not an SGDR file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SgdrError(f"{p}: not valid JSON ({' '.join(str(exc).split())})") from exc
    except RecursionError as exc:
        raise SgdrError(f"{p}: not readable (JSON nested too deeply)") from exc
    except OSError as exc:
        raise SgdrError(f"{p}: cannot read the file ({exc.strerror or exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
        raise SgdrError(f"{p}: expected an object with a 'samples' list")
    version = data.get("version")
    # an integer, exactly: true and 1.0 compare equal to 1 in Python but are not version 1
    if type(version) is not int or version != SGDR_VERSION:
        raise SgdrError(
            f"{p}: unsupported version {_short(data.get('version'))} (this reader knows {SGDR_VERSION})"
        )
    samples: list[SgdrSample] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["samples"]):
        name = f"{p.name}[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            name += f" id={_short(entry['id'])}"
        try:
            sample = parse_sample(entry)
        except ValueError as exc:
            errors.append((name, str(exc)))
            continue
        except (TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
            # any other problem inside one entry is that entry's problem, never the file's
            errors.append((name, f"malformed entry ({type(exc).__name__})"))
            continue
        if sample.id in seen:
            errors.append((name, "duplicate id in this file"))
            continue
        seen.add(sample.id)
        samples.append(sample)
    return samples, errors


def dumps_sgdr(samples: list[SgdrSample]) -> str:
    """The file text: one sample per line, fixed key order, trailing newline."""
    lines = [json.dumps(s.to_dict(), ensure_ascii=False, separators=(", ", ": ")) for s in samples]
    body = ",\n  ".join(lines)
    return (
        f'{{"version": {SGDR_VERSION},\n "samples": [\n  {body}\n ]}}\n'
        if lines
        else (f'{{"version": {SGDR_VERSION},\n "samples": []}}\n')
    )


def write_sgdr_stream(f: IO[str], samples: Iterable[SgdrSample]) -> int:
    """Write the text of :func:`dumps_sgdr` to the open text file ``f`` one sample at a time
    (memory does not grow with the number of samples); returns how many were written."""
    f.write(f'{{"version": {SGDR_VERSION},\n "samples": [')
    n = 0
    for s in samples:
        f.write(",\n  " if n else "\n  ")
        f.write(json.dumps(s.to_dict(), ensure_ascii=False, separators=(", ", ": ")))
        n += 1
    f.write("\n ]}\n" if n else "]}\n")
    return n


def write_sgdr(path: str | Path, samples: list[SgdrSample]) -> None:
    """Write atomically (:func:`core.fileio.atomic_write`): all of the new file or the old one
    untouched; raises :class:`core.fileio.WriteError` with a one-line message."""
    atomic_write(path, dumps_sgdr(samples))
