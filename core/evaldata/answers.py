"""Parsing the answers of the App. D prompts (Figures S7–S10).

Models add prose, code fences, bold markers and quote styles; these parsers accept that and
raise :class:`core.benchmark.answers.AnswerError` (one line) for anything that is not in the
prompt's format, so a garbage answer is recorded as an ``error`` and changes nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.benchmark.answers import AnswerError, is_na, json_object

__all__ = [
    "AnswerError",
    "AnnotatorAnswer",
    "FilterAnswer",
    "SpatialQuestion",
    "parse_annotator",
    "parse_category_annotator",
    "parse_filter",
    "parse_spatial_reasoning",
]

_QUOTES = "\"'‘’“”`"


@dataclass(frozen=True)
class FilterAnswer:
    """Figure S7: ``usable`` when Score is 1; ``reason`` the 1–2 sentences."""

    usable: bool
    reason: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class AnnotatorAnswer:
    """Figures S8 / S10: ``keep`` the decision, ``reasoning`` the chain-of-thought answer
    (``None`` when discarded), ``reason`` why."""

    keep: bool
    reasoning: str | None
    reason: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class SpatialQuestion:
    """One instance of a Figure S9 answer."""

    target_id: int
    question: str
    relation: str
    reasoning: str


def _strip(value: str) -> str:
    v = value.strip().strip("*").strip()
    v = v.strip(",").strip()
    if len(v) >= 2 and v[0] in _QUOTES and v[-1] in _QUOTES:
        v = v[1:-1].strip()
    return v


def _labelled(text: str, labels: tuple[str, ...]) -> dict[str, str]:
    """``Label: value`` fields of ``text`` (values may run over several lines until the next
    label); labels match case- and space-insensitively, bold / quote / brace marks allowed."""
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer is empty")
    body = re.sub(r"```[a-z]*", "", text)
    alt = "|".join(r"\s*".join(map(re.escape, lab.split())) for lab in labels)
    pat = re.compile(
        rf"(?im)^[\s{{*#>\-‘’“”\"']*({alt})[\s*‘’“”\"']*:",
    )
    hits = list(pat.finditer(body))
    out: dict[str, str] = {}
    for i, m in enumerate(hits):
        end = hits[i + 1].start() if i + 1 < len(hits) else len(body)
        key = re.sub(r"\s+", "", m.group(1)).lower()
        value = body[m.end() : end].strip().rstrip("}").strip()
        out.setdefault(key, _strip(value))
    return out


def parse_filter(text: str) -> FilterAnswer:
    """``Reason: …`` / ``Score: 0|1`` (Figure S7; the in-context example's ``{Reason: …, Score:
    0,}`` on one line is read too)."""
    flat = re.sub(r",\s*(Score\s*:)", r"\n\1", str(text or ""), flags=re.I)
    fields = _labelled(flat, ("Reason", "Score"))
    score = fields.get("score", "")
    m = re.match(r"^[\s\"'‘’“”]*([01])\b", score)
    if m is None:
        raise AnswerError(
            f"no 'Score: 0|1' in the filter's answer: {' '.join(str(text).split())[:120]!r}"
        )
    return FilterAnswer(m.group(1) == "1", fields.get("reason", ""), fields)


def parse_annotator(text: str) -> AnnotatorAnswer:
    """Figure S8: ``Reason``, ``Correctness: Pass/Fail``, ``Ambiguity: Unique/Ambiguous/NA``,
    ``FinalDecision: Keep/Discard``, ``Answer``. Kept only when the decision is Keep, and (as
    the prompt's rule says) Correctness is Pass and Ambiguity Unique, with an answer text."""
    labels = ("Reason", "Correctness", "Ambiguity", "Final Decision", "Answer")
    fields = _labelled(text, labels)
    decision = fields.get("finaldecision", "").split()[0:1]
    if not decision or decision[0].strip(".").lower() not in ("keep", "discard"):
        raise AnswerError(
            f"no 'FinalDecision: Keep/Discard' in the annotator's answer: {' '.join(str(text).split())[:120]!r}"
        )
    keep = decision[0].strip(".").lower() == "keep"
    why = fields.get("reason", "")
    if keep:
        correct = fields.get("correctness", "").lower().startswith("pass")
        unique = fields.get("ambiguity", "").lower().startswith("unique")
        answer = fields.get("answer", "")
        if not (correct and unique):
            return AnnotatorAnswer(
                False,
                None,
                f"Keep contradicts Correctness {fields.get('correctness', '?')} / Ambiguity "
                f"{fields.get('ambiguity', '?')}: {why}",
                fields,
            )
        if is_na(answer):
            raise AnswerError("the annotator kept the sample but wrote no answer")
        return AnnotatorAnswer(True, answer, why, fields)
    return AnnotatorAnswer(False, None, why, fields)


def _true(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    v = str(value).strip().strip(_QUOTES).lower()
    return {"true": True, "false": False, "1": True, "0": False}.get(v)


def parse_category_annotator(text: str) -> AnnotatorAnswer:
    """Figure S10 (and the known-answer prompt): a JSON object ``{"valid": true|false,
    "answer": "…"}``; valid needs an answer."""
    obj = json_object(text)
    valid = _true(obj.get("valid"))
    if valid is None:
        raise AnswerError(f"'valid' is not true or false: {obj.get('valid')!r}")
    if not valid:
        return AnnotatorAnswer(False, None, "the annotator marked the sample invalid", obj)
    answer = obj.get("answer")
    if not isinstance(answer, str) or is_na(answer):
        raise AnswerError("the annotator marked the sample valid but wrote no answer")
    return AnnotatorAnswer(True, answer.strip(), "valid", obj)


def parse_spatial_reasoning(text: str) -> list[SpatialQuestion]:
    """Figure S9: one ``Target ID / Question / Relation / Answer`` block per instance, in any
    order; blocks without a question or an answer are left out. Raises when none is usable."""
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the answer is empty")
    body = re.sub(r"```[a-z]*", "", text)
    starts = list(
        re.finditer(r"(?im)^[\s*#>\-]*Target\s*ID[\s*]*:[\s*]*\[?\s*(?:#|ID\s*)?(\d+)", body)
    )
    out: list[SpatialQuestion] = []
    seen: set[int] = set()
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(body)
        block = body[m.end() : end]
        f = _labelled(block, ("Question", "Relation", "Answer"))
        q, a = f.get("question", "").strip("[]"), f.get("answer", "").strip("[]")
        tid = int(m.group(1))
        if is_na(q) or is_na(a) or tid in seen:
            continue
        seen.add(tid)
        out.append(SpatialQuestion(tid, q, f.get("relation", "").strip("[]"), a))
    if not out:
        raise AnswerError(
            f"no 'Target ID / Question / Answer' block in the answer: {' '.join(text.split())[:120]!r}"
        )
    return out
