"""What review needs of a training sample's reasoning: its annotations (newest last), the
verdict filter of the queue, and the samples that have a reasoning text at all."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store import Store
from core.store.models import ReasoningAnnotation, Sample

REASONING_FILTERS = ("accepted", "rejected", "reviewed", "not reviewed", "not annotated")
"""The reasoning queue's filters: the latest annotation's verdict, the reviewer's decision on
the reasoning (``reviewed``: verified or rejected), or no annotation yet."""


@dataclass(frozen=True)
class AnnotationView:
    """One reasoning annotation, as plain data for the review panel and ``reasoning list``."""

    id: int
    builder: str
    item_key: str
    sample_id: int | None
    verdict: str
    stage: str
    reasons: str
    question: str | None
    answer: str | None
    reasoning: str | None
    prompt_versions: dict[str, str]
    endpoint: str
    calls: list[dict[str, Any]]
    details: dict[str, Any]
    usage: dict[str, Any]
    seconds: float
    error: str | None
    requested_by: str
    created_at: dt.datetime

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(str(c.get("model", "")) for c in self.calls))


def _view(r: ReasoningAnnotation) -> AnnotationView:
    return AnnotationView(
        r.id,
        r.builder,
        r.item_key,
        r.sample_id,
        r.verdict,
        r.stage,
        r.reasons,
        r.question,
        r.answer,
        r.reasoning,
        dict(r.prompt_versions or {}),
        r.endpoint,
        list(r.calls or []),
        dict(r.details or {}),
        dict(r.usage or {}),
        float(r.seconds or 0.0),
        r.error,
        r.requested_by,
        r.created_at,
    )


def has_annotations(store: Store) -> bool:
    """Whether any reasoning was annotated (the app then shows its reasoning panel)."""
    return store.run(
        lambda s: s.scalar(select(ReasoningAnnotation.id).limit(1)) is not None, write=False
    )


def annotations_of(store: Store, sample_id: int) -> list[AnnotationView]:
    """Every annotation of the sample, oldest first (its history of model passes)."""

    def q(s: Session) -> list[AnnotationView]:
        rows = s.scalars(
            select(ReasoningAnnotation)
            .where(ReasoningAnnotation.sample_id == sample_id)
            .order_by(ReasoningAnnotation.id)
        )
        return [_view(r) for r in rows]

    return store.run(q, write=False)


def latest_annotation(store: Store, sample_id: int) -> AnnotationView | None:
    rows = annotations_of(store, sample_id)
    return rows[-1] if rows else None


def list_annotations(
    store: Store, *, builder: str | None = None, verdict: str | None = None
) -> list[AnnotationView]:
    """All annotations (optionally of one builder / verdict), oldest first — rejected items
    without a sample included, with their reasons."""

    def q(s: Session) -> list[AnnotationView]:
        stmt = select(ReasoningAnnotation).order_by(ReasoningAnnotation.id)
        if builder:
            stmt = stmt.where(ReasoningAnnotation.builder == builder)
        if verdict:
            stmt = stmt.where(ReasoningAnnotation.verdict == verdict)
        return [_view(r) for r in s.scalars(stmt)]

    return store.run(q, write=False)


def filter_by_reasoning(store: Store, sample_ids: list[int], which: str | None) -> list[int]:
    """``sample_ids`` (order kept) that pass the reasoning filter ``which`` (one of
    :data:`REASONING_FILTERS`; ``None`` keeps all)."""
    if not which:
        return list(sample_ids)
    if which not in REASONING_FILTERS:
        raise ValueError(
            f"unknown reasoning filter {which!r}; use one of {list(REASONING_FILTERS)}"
        )

    def q(s: Session) -> set[int]:
        if which in ("reviewed", "not reviewed"):
            stmt = select(Sample.id).where(Sample.reasoning.is_not(None))
            done = Sample.reasoning_status.in_(("verified", "rejected"))
            return set(s.scalars(stmt.where(done if which == "reviewed" else ~done)))
        annotated = set(
            s.scalars(
                select(ReasoningAnnotation.sample_id).where(
                    ReasoningAnnotation.sample_id.is_not(None)
                )
            )
        )
        if which == "not annotated":
            return set(sample_ids) - annotated
        latest = (
            select(func.max(ReasoningAnnotation.id).label("id"))
            .where(ReasoningAnnotation.sample_id.is_not(None))
            .group_by(ReasoningAnnotation.sample_id)
            .subquery()
        )
        return set(
            s.scalars(
                select(ReasoningAnnotation.sample_id)
                .join(latest, latest.c.id == ReasoningAnnotation.id)
                .where(ReasoningAnnotation.verdict == which)
            )
        )

    keep = store.run(q, write=False)
    return [i for i in sample_ids if i in keep]
