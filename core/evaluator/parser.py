"""Read per-mask IoU scores out of whatever the evaluator model wrote (§4.3).

:func:`parse_scores` never raises and never invents a score: a mask without a usable score gets
``None`` and the reason goes into ``ParseResult.error`` (recorded in the trace as the group's
``parse_error``).

Where the scores are looked for
    The chain of thought is split off first: the text inside ``<think>…</think>``, or the text
    before the last ``Answer:`` / ``Final answer:`` marker. The scores are read from the rest
    (the *body*); when the body has none, from the whole text.

Accepted forms, tried in this order on the body (the first form that yields a score wins):

1. **mask lines** — ``Mask 3: 0.72``, ``mask_3 = 72%``, ``**Mask #3** - IoU: 0.7``,
   ``Candidate 3 (score) 0.7``, ``"mask_3": 0.72`` (inside JSON too): the word *mask* (or
   *candidate*) and its number, then only punctuation and the words *IoU*, *score*, *is*,
   *of*, *predicted*, *estimated*, *about*, *approximately*, then the number. So
   ``IoU of mask 2 is 0.5`` is read, while ``Mask 2 covers 3 people`` is not a score;
2. **JSON** — an object ``{"mask_1": 0.7, "2": "45%"}``, a positional list ``[0.7, 0.1]``, a
   list of objects ``[{"mask": 1, "iou": 0.7}]``, or any of these under a key such as
   ``"scores"`` (a ``"reasoning"`` string there becomes the chain of thought);
3. **loose mentions** — *mask k* followed on the same line, within 40 non-digit characters
   that do not name another mask, by a number: ``Mask 3 looks right, about 0.8``;
4. **a bare list** — a last line holding exactly ``n`` numbers (``Scores: 0.1, 0.5, 0.9``),
   read in mask order.

Values: ``0.72``, ``.72``, ``72%``; a number in (1, 100] without ``%`` is read as a percentage;
anything else outside [0, 1] (negative, > 100, NaN) is unusable (``None``, reported). An
integer above 1 without ``%`` followed by a word (``Mask 2 - 3 people``) is a count, not a
score, and is skipped. When a
mask is scored more than once, the last score wins (the final answer follows the reasoning).
Scores for masks outside 1..n are ignored and reported.

The canonical format of :func:`core.evaluator.prompt.canonical_answer` parses exactly.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

MAX_CHARS = 200_000  # longer text is cut (a runaway generation); the cut is reported
_MAX_JSON_TRIES = 200

_NUM = r"(?<![\w.])([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?)(?!\w)\s*(%|percent\b)?"
_MASK = r"(?<![A-Za-z])(?:mask|candidate)[\s#_\-]{0,3}(\d{1,4})(?![\d.]\d)"
_FILLER_WORDS = r"iou|score|is|of|predicted|estimated|about|approx(?:imately|\.)?|around"
_FILLER = r"(?:[\s:=*_()\[\]{}|#>\"'`~≈.–—-]|\b(?:" + _FILLER_WORDS + r")\b){0,12}?"
_STRICT = re.compile(_MASK + _FILLER + _NUM, re.IGNORECASE)
_LOOSE = re.compile(_MASK + r"(?:(?!mask|candidate)[^\d\n]){0,40}?" + _NUM, re.IGNORECASE)
_ANSWER = re.compile(r"(?:^|(?<=\W))(?:final\s+)?answer\s*:", re.IGNORECASE)
_THINK = re.compile(r"<think>(.*?)</think>", re.IGNORECASE | re.DOTALL)
_LABEL = re.compile(r"^\s*[A-Za-z][A-Za-z ]{0,20}:")
_TOKEN = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))(%?)")
_JSON_START = re.compile(r"[\[{]")
_WORD_AFTER = re.compile(r"[ \t]*(?!mask|candidate)[a-z]", re.IGNORECASE)
_REASONING_KEYS = ("reasoning", "reason", "thought", "thoughts", "analysis", "cot", "explanation")
_SCORE_KEYS = ("scores", "score", "ious", "iou", "answer", "result", "results", "masks")


@dataclass(frozen=True)
class ParseResult:
    """Scores for masks 1..n (``None`` where unusable), the chain of thought, and a message.

    ``error`` is ``None`` only when every mask got a usable score and nothing was off;
    ``notes`` holds harmless observations (a mask scored twice, the form that was read).
    """

    scores: list[float | None]
    cot: str | None
    error: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_value(num: str, pct: str | None = None) -> float | None:
    """A score in [0, 1] from a number's text (see module docstring), or ``None``."""
    try:
        v = float(num)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(v):
        return None
    if pct or 1.0 < v <= 100.0:
        v /= 100.0
    return v if 0.0 <= v <= 1.0 else None


def _json_value(v: Any) -> float | None | bool:
    """A score from a JSON value; ``False`` when the value is not a score at all."""
    if isinstance(v, bool) or v is None:
        return False
    if isinstance(v, int | float):
        return parse_value(str(v))
    if isinstance(v, str):
        m = re.fullmatch(r"\s*" + _NUM + r"\s*", v, re.IGNORECASE)
        if m:
            return parse_value(m.group(1), m.group(2))
    return False


def _index(key: Any) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    m = re.fullmatch(r"\s*(?:mask|candidate)?[\s#_\-]{0,3}(\d{1,4})\s*", str(key), re.IGNORECASE)
    return int(m.group(1)) if m else None


def _from_json_obj(obj: Any, depth: int = 0) -> tuple[dict[int, float | None], str | None]:
    """Scores (1-based mask index → value) and a reasoning string from one decoded JSON value."""
    out: dict[int, float | None] = {}
    cot = None
    if depth > 3:
        return out, cot
    if isinstance(obj, dict):
        for k, v in obj.items():
            kl = str(k).strip().lower()
            if kl in _REASONING_KEYS and isinstance(v, str):
                cot = v.strip() or None
                continue
            i = _index(k)
            val = _json_value(v)
            if i is not None and val is not False:
                out[i] = val  # type: ignore[assignment]
            elif kl in _SCORE_KEYS and isinstance(v, dict | list):
                sub, sub_cot = _from_json_obj(v, depth + 1)
                out.update(sub)
                cot = cot or sub_cot
    elif isinstance(obj, list) and obj:
        vals = [_json_value(v) for v in obj]
        if all(v is not False for v in vals):
            out = {i + 1: v for i, v in enumerate(vals)}  # type: ignore[misc]
        else:
            for item in obj:
                if not isinstance(item, dict):
                    continue
                lower = {str(k).lower(): v for k, v in item.items()}
                idx = next(
                    (
                        _index(lower[k])
                        for k in ("mask", "id", "index", "mask_id", "candidate")
                        if k in lower and _index(lower[k]) is not None
                    ),
                    None,
                )
                val = next(
                    (
                        _json_value(lower[k])
                        for k in ("iou", "score", "value", "predicted_iou")
                        if k in lower and _json_value(lower[k]) is not False
                    ),
                    False,
                )
                if idx is not None and val is not False:
                    out[idx] = val  # type: ignore[assignment]
    return out, cot


def _from_json(text: str) -> tuple[dict[int, float | None], str | None, int | None]:
    """The last JSON value in ``text`` that holds scores: (scores, reasoning, start offset)."""
    dec = json.JSONDecoder()
    best: tuple[dict[int, float | None], str | None, int | None] = ({}, None, None)
    pos, tries = 0, 0
    while tries < _MAX_JSON_TRIES:
        m = _JSON_START.search(text, pos)
        if m is None:
            break
        tries += 1
        try:
            obj, end = dec.raw_decode(text, m.start())
        except (ValueError, RecursionError):
            pos = m.start() + 1
            continue
        scores, cot = _from_json_obj(obj)
        if scores:
            best = (scores, cot, m.start())
        pos = max(end, m.start() + 1)
    return best


def _reads_as_count(m: re.Match[str], text: str) -> bool:
    """``Mask 2 - 3 people``: an integer above 1 with no ``%`` followed by a word is a count."""
    num, pct = m.group(2), m.group(3)
    return (
        not pct
        and num.lstrip("+-").isdigit()
        and int(num) > 1
        and bool(_WORD_AFTER.match(text, m.end()))
    )


def _from_regex(
    rx: re.Pattern[str], text: str
) -> tuple[dict[int, float | None], int | None, list[int]]:
    found: dict[int, float | None] = {}
    repeated: list[int] = []
    first = None
    for m in rx.finditer(text):
        if _reads_as_count(m, text):
            continue
        i = int(m.group(1))
        if i in found and i not in repeated:
            repeated.append(i)
        found[i] = parse_value(m.group(2), m.group(3))
        first = m.start() if first is None else first
    return found, first, repeated


def _from_bare_line(text: str, n: int) -> tuple[dict[int, float | None], int | None]:
    """A last line of exactly ``n`` numbers (optionally after a short ``Label:``), in mask order."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or len(lines[-1]) > 400:
        return {}, None
    last = lines[-1]
    rest = _LABEL.sub("", last, count=1).strip().rstrip(".")
    tokens = [t for t in re.split(r"[,;\s]+", rest) if t]
    parsed = [_TOKEN.fullmatch(t) for t in tokens]
    if len(tokens) != n or not all(parsed):
        return {}, None
    return {i + 1: parse_value(m.group(1), m.group(2)) for i, m in enumerate(parsed)}, text.rfind(
        last
    )


def _split_cot(text: str) -> tuple[str | None, str]:
    think = list(_THINK.finditer(text))
    if think:
        cot = "\n".join(t.group(1).strip() for t in think).strip() or None
        return cot, text[think[-1].end() :]
    markers = list(_ANSWER.finditer(text))
    if markers:
        return text[: markers[-1].start()].strip() or None, text[markers[-1].end() :]
    return None, text


def _find(
    body: str, n: int
) -> tuple[dict[int, float | None], int | None, str | None, list[int], str]:
    """Scores from ``body`` by the first form that yields any: (scores, first offset, reasoning, repeated, form)."""
    found, first, repeated = _from_regex(_STRICT, body)
    if found:
        return found, first, None, repeated, "mask lines"
    js, js_cot, js_first = _from_json(body)
    if js:
        return js, js_first, js_cot, [], "JSON"
    found, first, repeated = _from_regex(_LOOSE, body)
    if found:
        return found, first, None, repeated, "loose mentions"
    bare, bare_first = _from_bare_line(body, n)
    if bare:
        return bare, bare_first, None, [], "bare list"
    return {}, None, None, [], ""


def parse_scores(text: str, n: int) -> ParseResult:
    """Scores for masks ``1..n`` from the model's ``text`` (rules in the module docstring).

    Never raises: any internal failure becomes a ``ParseResult`` with all scores ``None`` and
    the failure in ``error``.
    """
    try:
        n = int(n)
    except (TypeError, ValueError):
        return ParseResult([], None, f"number of masks is not an integer: {n!r}")
    try:
        return _parse("" if text is None else str(text), n)
    except Exception as exc:  # noqa: BLE001 - a parser failure must never end a run
        return ParseResult([None] * max(n, 0), None, f"parser error: {type(exc).__name__}: {exc}")


def _snippet(text: str) -> str:
    s = " ".join(text.split())
    return repr(s[:120] + ("…" if len(s) > 120 else ""))


def _parse(text: str, n: int) -> ParseResult:
    if n <= 0:
        return ParseResult([], None, "no masks to score")
    problems: list[str] = []
    notes: list[str] = []
    if len(text) > MAX_CHARS:
        problems.append(f"text cut to its first {MAX_CHARS} of {len(text)} characters")
        text = text[:MAX_CHARS]
    cot, body = _split_cot(text)
    found, first, js_cot, repeated, form = _find(body, n)
    if not found and body is not text:
        found, first, js_cot, repeated, form = _find(text, n)
        if found:
            notes.append("no scores after the answer marker; read from the whole text")
            body, cot = text, None
    if form:
        notes.append(f"read as {form}")
    if cot is None:
        cot = js_cot
    if cot is None and first is not None and first > 0:
        # text before the line of the first score (a reasoning paragraph without a marker)
        cot = body[: body.rfind("\n", 0, first) + 1].strip() or None
    if repeated:
        notes.append(f"masks scored more than once (last score kept): {sorted(repeated)}")
    if not found:
        return ParseResult(
            [None] * n, cot, f"no scores found in the model's text: {_snippet(text)}", tuple(notes)
        )
    extra = sorted(k for k in found if not 1 <= k <= n)
    if extra:
        problems.append(f"ignored scores for masks outside 1..{n}: {extra[:10]}")
    scores = [found.get(i) for i in range(1, n + 1)]
    bad = [i for i in range(1, n + 1) if i in found and found[i] is None]
    if bad:
        problems.append(f"unusable values (not in [0, 1] or 0–100%) for masks {bad}")
    missing = [i for i in range(1, n + 1) if i not in found]
    if missing:
        problems.append(f"no score for masks {missing}")
    if all(s is None for s in scores):
        problems.append(f"no usable score in: {_snippet(text)}")
    return ParseResult(scores, cot, "; ".join(problems) or None, tuple(notes))
