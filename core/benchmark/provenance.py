"""What review needs of a generated question: its latest generation record (answers, verdict,
models, prompt versions), the verdict filter of the queue, and re-generation of one sample."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.benchmark.generate import (
    REGENERATED_NOTE,
    GenerationError,
    generate_one,
    prompt_boxes,
)
from core.llm_client import API_KEY_ENV, ChatClient
from core.store import Store
from core.store.models import QuestionGeneration, Revision
from core.vocab import VERDICT_FILTERS  # noqa: F401  (re-exported for the questions panel)


@dataclass(frozen=True)
class GenerationView:
    """The latest generation of a sample, as plain data for the review panel."""

    id: int
    sample_id: int
    target_id: int
    split: str
    verdict: str
    reasons: str
    question: str | None
    generator_model: str
    generator_raw: str
    generator_parsed: dict[str, Any] | None
    verifier_model: str
    verifier_raw: str
    verifier_parsed: dict[str, Any] | None
    prompt_versions: dict[str, str]
    endpoint: str
    usage: dict[str, Any]
    requested_by: str
    created_at: dt.datetime
    count: int  # generations of this sample so far
    # the boxes of the prompt image the generator and verifier saw (App. C), image pixels
    # (x0, y0, x1, y1), exclusive max: the target's (red) and the other instances' (blue)
    target_box_xyxy: tuple[int, int, int, int] | None = None
    other_boxes_xyxy: tuple[tuple[int, int, int, int], ...] = ()


def _latest_ids(s: Session):
    return (
        select(func.max(QuestionGeneration.id).label("id"), QuestionGeneration.sample_id)
        .where(QuestionGeneration.sample_id.is_not(None))
        .group_by(QuestionGeneration.sample_id)
        .subquery()
    )


def has_generations(store: Store) -> bool:
    """Whether any sample of the store was generated (the app shows its generated-question panel)."""
    return store.run(
        lambda s: s.scalar(select(QuestionGeneration.id).limit(1)) is not None, write=False
    )


def latest_generation(store: Store, sample_id: int) -> GenerationView | None:
    """The sample's most recent generation, ``None`` for a sample that was not generated."""

    def q(s: Session) -> GenerationView | None:
        rows = list(
            s.scalars(
                select(QuestionGeneration)
                .where(QuestionGeneration.sample_id == sample_id)
                .order_by(QuestionGeneration.id)
            )
        )
        if not rows:
            return None
        g = rows[-1]
        try:
            box, others = prompt_boxes(s, g.target_id)
        except LookupError:  # the target is gone: no boxes to show
            box, others = None, []
        return GenerationView(
            g.id,
            sample_id,
            g.target_id,
            g.split,
            g.verdict,
            g.reasons,
            g.question,
            g.generator_model,
            g.generator_raw,
            g.generator_parsed,
            g.verifier_model,
            g.verifier_raw,
            g.verifier_parsed,
            dict(g.prompt_versions or {}),
            g.endpoint,
            dict(g.usage or {}),
            g.requested_by,
            g.created_at,
            len(rows),
            None if box is None else tuple(box),
            tuple(tuple(o) for o in others),
        )

    return store.run(q, write=False)


def question_edited_by_hand(store: Store, sample_id: int) -> bool:
    """Whether the sample's question was last changed by a person (an edit, undo or redo that is
    not a re-generation's): a re-generation would replace that work."""

    def q(s: Session) -> bool:
        rev = s.scalar(
            select(Revision)
            .where(Revision.sample_id == sample_id, Revision.field == "question")
            .order_by(Revision.id.desc())
            .limit(1)
        )
        return rev is not None and not (rev.note or "").startswith(REGENERATED_NOTE)

    return store.run(q, write=False)


def sample_ids_with_verdict(s: Session, verdict: str) -> set[int]:
    """Samples whose latest generation has ``verdict``; ``"not generated"``: the complement is
    not listed, callers keep samples absent from :func:`generated_sample_ids`."""
    latest = _latest_ids(s)
    q = select(QuestionGeneration.sample_id).join(latest, latest.c.id == QuestionGeneration.id)
    return set(s.scalars(q.where(QuestionGeneration.verdict == verdict)))


def generated_sample_ids(s: Session) -> set[int]:
    return set(
        s.scalars(
            select(QuestionGeneration.sample_id).where(QuestionGeneration.sample_id.is_not(None))
        )
    )


def filter_by_verdict(store: Store, sample_ids: list[int], verdict: str | None) -> list[int]:
    """``sample_ids`` (order kept) whose latest verifier verdict is ``verdict`` (one of
    :data:`VERDICT_FILTERS`; ``None`` keeps all)."""
    if not verdict:
        return list(sample_ids)
    if verdict not in VERDICT_FILTERS:
        raise ValueError(f"unknown verdict filter {verdict!r}; use one of {list(VERDICT_FILTERS)}")
    if verdict == "not generated":
        gen = store.run(generated_sample_ids, write=False)
        return [i for i in sample_ids if i not in gen]
    keep = store.run(lambda s: sample_ids_with_verdict(s, verdict), write=False)
    return [i for i in sample_ids if i in keep]


def regenerate(
    store: Store, sample_id: int, *, user: str, api_key: str | None = None, **client_options: Any
) -> GenerationView:
    """Ask the endpoint and models of the sample's latest generation again for its target.

    The key comes from ``api_key`` or ``$REA2SEG_EVAL_API_KEY``. The new question and status
    are recorded as ``user``'s revisions; a failed or skipped attempt changes nothing but the
    history of generations.
    """
    if not (user or "").strip():
        raise GenerationError("a user name is required to ask for a re-generation")
    last = latest_generation(store, sample_id)
    if last is None:
        raise GenerationError(
            f"sample {sample_id} was not generated; there is nothing to re-generate"
        )
    kind = None
    gen = ver = None
    if last.verdict == "fixed":
        tag = last.prompt_versions.get("fixed", "")
        kind = tag.split("_question")[0]
    else:
        if not last.endpoint:
            raise GenerationError(f"sample {sample_id}: its generation has no endpoint recorded")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        gen = ChatClient(last.endpoint, last.generator_model, key, **client_options)
        ver = ChatClient(last.endpoint, last.verifier_model, key, **client_options)
    generate_one(store, last.target_id, last.split, gen, ver, kind=kind, user=user.strip())
    out = latest_generation(store, sample_id)
    assert out is not None
    return out
