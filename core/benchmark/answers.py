"""Parsing the generator's and the verifier's answers (formats of App. C, Figures S3–S5).

Models wrap JSON in prose or code fences and write ``NA`` in several quote styles; these
parsers accept that and raise :class:`AnswerError` (one line) for anything else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class AnswerError(ValueError):
    """A model answer that is not in the prompt's format."""


@dataclass(frozen=True)
class GeneratorAnswer:
    """``expression`` is ``None`` when the generator skipped the target."""

    expression: str | None
    fields: dict[str, Any]


@dataclass(frozen=True)
class VerifierAnswer:
    accepted: bool
    question: str | None
    reasons: str
    fields: dict[str, Any]


MAX_OBJECT_STARTS = 64
"""At most this many ``{`` of an answer are tried as the start of its JSON object (prose before
the object rarely holds braces). Not from the paper."""

_QUOTES = "\"'‘’“”`"


def _clean(value: Any) -> str:
    return str(value if value is not None else "").strip().strip(",").strip().strip(_QUOTES).strip()


def _text(fields: dict[str, Any], key: str, who: str) -> Any:
    """``fields[key]`` when it is text or null; AnswerError for a number, list or object."""
    v = fields.get(key)
    if v is not None and not isinstance(v, str):
        raise AnswerError(f"the {who}'s {key!r} is a JSON {type(v).__name__}, not text")
    return v


def is_na(value: Any) -> bool:
    return value is None or _clean(value).upper() in ("NA", "N/A", "")


def json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (code fences and surrounding prose allowed)."""
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer is empty")
    body = re.sub(r"```(?:json)?", "", text)
    dec = json.JSONDecoder()
    for i, m in enumerate(re.finditer(r"\{", body)):
        if i == MAX_OBJECT_STARTS:  # a reply of nested braces would cost quadratic time
            break
        try:
            obj, _ = dec.raw_decode(body[m.start() :])
        except json.JSONDecodeError:
            continue
        except RecursionError:
            raise AnswerError("the answer's JSON is nested too deeply to read") from None
        if isinstance(obj, dict):
            return obj
    raise AnswerError(f"no JSON object in the answer: {' '.join(text.split())[:120]!r}")


def _flag(fields: dict[str, Any], key: str) -> int | None:
    """0/1 of a verifier field; ``None`` for ``NA``; AnswerError when absent or garbage."""
    if key not in fields:
        raise AnswerError(f"the verifier's answer has no {key!r}")
    v = fields[key]
    if is_na(v):
        return None
    s = _clean(v)
    if s in ("0", "1"):
        return int(s)
    if isinstance(v, bool):
        return int(v)
    raise AnswerError(f"the verifier's {key!r} is {v!r}, not 0, 1 or NA")


def parse_spatial_generator(text: str) -> GeneratorAnswer:
    """Figure S3: ``{"phrase": …, "relation": …}``; an empty or ``NA`` phrase is a skip."""
    fields = json_object(text)
    if "phrase" not in fields:
        raise AnswerError("the generator's answer has no 'phrase'")
    phrase = _text(fields, "phrase", "generator")
    return GeneratorAnswer(None if is_na(phrase) else _clean(phrase), fields)


_MS_KEYS = {
    "description": "description",
    "discriminative condition": "condition",
    "final multi-step referring expression": "expression",
}


def parse_multi_step_generator(text: str) -> GeneratorAnswer:
    """Figure S5: ``Description`` / ``Discriminative condition`` / ``Final multi-step referring
    expression`` (as JSON or as ``key: value`` lines); ``NA`` is a skip."""
    fields: dict[str, Any] = {}
    try:
        obj = json_object(text)
        fields = {
            _MS_KEYS[k.strip().lower()]: v for k, v in obj.items() if k.strip().lower() in _MS_KEYS
        }
    except AnswerError:
        pass
    if "expression" not in fields:
        pattern = re.compile(
            r"^\s*[\"'*-]*\s*(description|discriminative condition|final multi-step referring expression)"
            r"\s*[\"'*]*\s*:\s*(.*)$",
            re.IGNORECASE,
        )
        for line in str(text).splitlines():
            m = pattern.match(line)
            if m:
                fields[_MS_KEYS[m[1].lower()]] = _clean(m[2])
    if "expression" not in fields:
        raise AnswerError(
            f"no 'Final multi-step referring expression' in the answer: {' '.join(str(text).split())[:120]!r}"
        )
    expr = _text(fields, "expression", "generator")
    return GeneratorAnswer(None if is_na(expr) else _clean(expr), fields)


def parse_verifier(
    text: str, flags: tuple[str, ...] = ("incorrect", "ambiguous", "trivial")
) -> VerifierAnswer:
    """Figures S4 (and S2 with ``flags=("ambiguous", "shortcut")``): accepted when every flag
    is 0 and ``question`` is a question; the reasons name the flags set and the verifier's
    ``thinking_process``."""
    fields = json_object(text)
    values = {k: _flag(fields, k) for k in flags}
    raised = [k for k, v in values.items() if v == 1]
    raw_question = _text(fields, "question", "verifier")
    question = None if is_na(raw_question) else _clean(raw_question)
    accepted = not raised and all(v == 0 for v in values.values()) and question is not None
    why = raised or ([] if accepted else ["no rewritten question"])
    thinking = _clean(fields.get("thinking_process", ""))
    reasons = "; ".join(
        [
            *(f"{k}=1" for k in raised),
            *([] if raised or accepted else why),
            *([thinking] if thinking else []),
        ]
    )
    return VerifierAnswer(accepted, question, reasons, fields)
