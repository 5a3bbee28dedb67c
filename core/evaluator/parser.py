"""Parse whatever an evaluator model wrote into per-mask scores — never raising, never a silent 0.

Accepted forms (case-insensitive), searched in the text after the chain of thought:

- lines like ``Mask 3: 0.72``, ``mask_3 = 72%``, ``Mask #3 - IoU 0.7``, ``IoU of mask 2 is 0.5``;
- JSON: ``{"mask_1": 0.7, "2": 0.1}``, ``[0.7, 0.1, …]`` (positional), or
  ``[{"mask": 1, "iou": 0.7}, …]``.

Values: a trailing ``%`` or a bare number in (1, 100] is a percentage; anything else outside
[0, 1] is rejected. When a mask is scored more than once the last score wins (the final answer
follows the reasoning). Masks outside 1..n are ignored and reported; missing masks get
``None``. The chain of thought is the text before ``Answer:`` (or before the first score).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_NUM = r"(-?\d+(?:\.\d+)?)\s*(%?)"
_LINE = re.compile(r"mask\s*[#_\-]?\s*(\d+)\b[^\d\n]{0,40}?" + _NUM, re.IGNORECASE)
_IOU_OF = re.compile(r"iou\s+(?:of|for)\s+mask\s*[#_\-]?\s*(\d+)\b[^\d\n]{0,20}?" + _NUM, re.IGNORECASE)
_ANSWER = re.compile(r"\banswer\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class ParseResult:
    scores: list[float | None]
    cot: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _value(num: str, pct: str) -> float | None:
    try:
        v = float(num)
    except ValueError:
        return None
    if pct or 1.0 < v <= 100.0:
        v /= 100.0
    return v if 0.0 <= v <= 1.0 else None


def _from_json(text: str, n: int) -> dict[int, float | None] | None:
    for m in re.finditer(r"[\[{]", text):
        start = m.start()
        for end in range(len(text), start, -1):
            if text[end - 1] not in "]}":
                continue
            try:
                obj = json.loads(text[start:end])
            except (json.JSONDecodeError, RecursionError):
                continue
            got = _json_scores(obj, n)
            if got:
                return got
            break
    return None


def _json_scores(obj, n: int) -> dict[int, float | None]:
    out: dict[int, float | None] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            m = re.search(r"(\d+)", str(k))
            if m and isinstance(v, int | float) and not isinstance(v, bool):
                out[int(m.group(1))] = _value(str(v), "")
            elif m and isinstance(v, str):
                mv = re.match(r"\s*" + _NUM, v)
                if mv:
                    out[int(m.group(1))] = _value(mv.group(1), mv.group(2))
    elif isinstance(obj, list):
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in obj) and obj:
            out = {i + 1: _value(str(v), "") for i, v in enumerate(obj)}
        else:
            for item in obj:
                if isinstance(item, dict):
                    idx = next((item[k] for k in ("mask", "id", "index") if isinstance(item.get(k), int)), None)
                    val = next((item[k] for k in ("iou", "score", "IoU") if isinstance(item.get(k), int | float)), None)
                    if idx is not None and val is not None and not isinstance(val, bool):
                        out[idx] = _value(str(val), "")
    return out


def parse_scores(text: str, n: int) -> ParseResult:
    """Scores for masks 1..``n`` from model text; see the module docstring for the rules."""
    try:
        return _parse(text if isinstance(text, str) else str(text), n)
    except Exception as exc:  # noqa: BLE001 - the parser must never take the run down
        return ParseResult([None] * max(n, 0), None, f"parser error: {type(exc).__name__}: {exc}")


def _parse(text: str, n: int) -> ParseResult:
    if n <= 0:
        return ParseResult([], None, "no masks to score")
    ans = list(_ANSWER.finditer(text))
    cot = None
    body = text
    if ans:
        cot = text[: ans[-1].start()].strip() or None
        body = text[ans[-1].end():]
    found: dict[int, float | None] = {}
    first_pos = None
    for rx in (_LINE, _IOU_OF):
        for m in rx.finditer(body):
            found[int(m.group(1))] = _value(m.group(2), m.group(3))
            first_pos = m.start() if first_pos is None else min(first_pos, m.start())
    if not found:
        js = _from_json(body, n)
        if js:
            found = js
    if cot is None and first_pos is not None and first_pos > 0:
        cot = body[:first_pos].strip(" \t\r\n{[\"'") or None
    problems = []
    extra = sorted(k for k in found if not 1 <= k <= n)
    if extra:
        problems.append(f"ignored scores for masks outside 1..{n}: {extra}")
    scores = [found.get(i) for i in range(1, n + 1)]
    bad = [i for i in range(1, n + 1) if i in found and found[i] is None]
    if bad:
        problems.append(f"unusable values (not in [0, 1] or 0–100%) for masks {bad}")
    missing = [i for i in range(1, n + 1) if i not in found]
    if len(missing) == n:
        snippet = " ".join(text.split())[:120]
        return ParseResult([None] * n, cot, f"no scores found in the model's text: {snippet!r}")
    if missing:
        problems.append(f"no score for masks {missing}")
    return ParseResult(scores, cot, "; ".join(problems) or None)
