"""What the App. D builders share: the builders and their prompt files, which items each can
annotate (and resume), one model call recorded into a :class:`ReasoningAnnotation`, and writing
records with the samples they make in one transaction."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.benchmark.prompts import Prompt, load_prompt
from core.importers.common import insert_sample
from core.llm_client import ChatClient, EndpointError
from core.store import Store, repo
from core.store.models import (
    Dataset,
    Image,
    InstanceGroup,
    ReasoningAnnotation,
    Sample,
    Target,
    VqaItem,
    utcnow,
)
from core.store.review import record_change
from core.textsafe import terminal_text

BUILDERS = ("gqa", "spatial", "category", "answer")
DONE_VERDICTS = ("accepted", "rejected", "skipped")  # an error is retried on resume
MIN_GROUP_SIZE = 2  # S9 asks for questions that tell instances of one category apart

# the prompt files of each builder: role → prompt name (resources/prompts/<name>.v<N>.txt)
PROMPT_NAMES: dict[str, dict[str, str]] = {
    "gqa": {
        "filter": "gqa_filter",
        "filter_user": "gqa_filter_user",
        "annotator": "gqa_annotator",
        "annotator_user": "gqa_annotator_user",
    },
    "spatial": {
        "annotator": "spatial_reasoning_generator",
        "annotator_user": "spatial_reasoning_generator_user",
    },
    "category": {"annotator": "category_annotator", "annotator_user": "category_annotator_user"},
    "answer": {"annotator": "answer_reasoning", "annotator_user": "answer_reasoning_user"},
}

SAMPLE_CATEGORY = {"gqa": "other", "spatial": "spatial", "category": "other"}


class AnnotationError(ValueError):
    """A request that cannot start (unknown builder, nothing to resume, no SAM 3, …)."""


def builder_prompts(builder: str) -> dict[str, Prompt]:
    """The newest prompt files of ``builder`` by role."""
    if builder not in PROMPT_NAMES:
        raise AnnotationError(f"unknown builder {builder!r}; use one of {list(BUILDERS)}")
    return {role: load_prompt(name) for role, name in PROMPT_NAMES[builder].items()}


@dataclass
class BuildReport:
    """What a builder did: verdicts per record, errors (item, message), tokens, seconds."""

    verdicts: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    tokens: Counter = field(default_factory=Counter)
    samples: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        v = ", ".join(
            f"{k} {self.verdicts.get(k, 0)}"
            for k in ("accepted", "rejected", "skipped", "error")
            if self.verdicts.get(k) or k in ("accepted", "rejected")
        )
        lines = [
            f"annotations {sum(self.verdicts.values())}: {v}; samples with reasoning {self.samples}"
        ]
        if self.tokens:
            lines.append("tokens: " + ", ".join(f"{k} {n}" for k, n in sorted(self.tokens.items())))
        lines.append(f"seconds: {self.seconds:.1f}")
        lines += [f"  error {name}: {terminal_text(msg, 300)}" for name, msg in self.errors]
        return "\n".join(lines)


# -- which items --------------------------------------------------------------------------------


def _dataset_id(s: Session, name: str) -> int:
    ds = s.scalar(select(Dataset.id).where(Dataset.name == name))
    if ds is None:
        raise AnnotationError(f"no dataset {name!r} in the store")
    return ds


def eligible_keys(
    s: Session,
    builder: str,
    *,
    dataset: str | None = None,
    category: str | None = None,
    status: str | None = None,
) -> list[str]:
    """The item keys ``builder`` can annotate, in id order (module docstring)."""
    ds = _dataset_id(s, dataset) if dataset else None
    if builder == "gqa":
        q = select(VqaItem.id)
        if ds is not None:
            q = q.where(VqaItem.dataset_id == ds)
        return [f"vqa:{i}" for i in s.scalars(q.order_by(VqaItem.id))]
    if builder in ("spatial", "category"):
        sizes = (
            select(Target.group_id, func.count().label("n")).group_by(Target.group_id).subquery()
        )
        q = select(InstanceGroup.id).join(sizes, sizes.c.group_id == InstanceGroup.id)
        if builder == "spatial":
            q = q.where(InstanceGroup.kind == "category", sizes.c.n >= MIN_GROUP_SIZE)
        else:
            # a gRefCOCO-style group with its own expression (the importer writes the category
            # name where a group has none)
            q = q.where(
                InstanceGroup.kind == "group",
                func.length(func.trim(InstanceGroup.description)) > 0,
                InstanceGroup.description != InstanceGroup.category_name,
            )
        if ds is not None:
            q = q.where(InstanceGroup.dataset_id == ds)
        return [f"group:{i}" for i in s.scalars(q.order_by(InstanceGroup.id))]
    if builder == "answer":
        # samples that already carry a reasoning (e.g. made by another builder) are not asked again
        q = select(Sample.id).where(Sample.gt_mask_id.is_not(None), Sample.reasoning.is_(None))
        if ds is not None:
            q = q.where(Sample.dataset_id == ds)
        if category:
            q = q.where(Sample.category == category)
        if status:
            q = q.where(Sample.status == status)
        return [f"sample:{i}" for i in s.scalars(q.order_by(Sample.id))]
    raise AnnotationError(f"unknown builder {builder!r}; use one of {list(BUILDERS)}")


def items_to_annotate(
    store: Store,
    builder: str,
    *,
    resume: bool,
    limit: int | None = None,
    dataset: str | None = None,
    category: str | None = None,
    status: str | None = None,
) -> list[str]:
    """Eligible item keys without a finished annotation by ``builder``. Without ``resume``, a
    builder that already annotated some of them raises :class:`AnnotationError` (so a repeated
    command never pays twice)."""

    def q(s: Session) -> tuple[list[str], set[str], int]:
        keys = eligible_keys(s, builder, dataset=dataset, category=category, status=status)
        rows = s.execute(
            select(ReasoningAnnotation.item_key, ReasoningAnnotation.verdict).where(
                ReasoningAnnotation.builder == builder
            )
        ).all()
        wanted = set(keys)
        started = {k for k, _ in rows if k in wanted}
        done = {k for k, v in rows if v in DONE_VERDICTS and k in wanted}
        return keys, done, len(started)

    keys, done, started = store.run(q, write=False)
    if started and not resume:
        raise AnnotationError(
            f"the store already has {builder} annotations for {started} of these items; "
            "pass --resume to continue them"
        )
    todo = [k for k in keys if k not in done]
    return todo[:limit] if limit is not None else todo


# -- one item -----------------------------------------------------------------------------------


def new_record(
    builder: str, key: str, prompts: dict[str, Prompt], user: str
) -> ReasoningAnnotation:
    return ReasoningAnnotation(
        builder=builder,
        item_key=key,
        verdict="error",
        stage="",
        reasons="",
        prompt_versions={role: p.tag for role, p in prompts.items()},
        endpoint="",
        calls=[],
        details={},
        usage={},
        requested_by=user,
        created_at=utcnow(),
    )


def call_model(
    rec: ReasoningAnnotation,
    client: ChatClient,
    role: str,
    system: Prompt,
    user_text: str,
    images: list[np.ndarray],
) -> str:
    """One chat call, recorded in ``rec.calls`` / ``rec.usage``; raises :class:`EndpointError`."""
    rec.endpoint = rec.endpoint or client.endpoint
    try:
        reply = client.chat(system.text, user_text, images)
    except EndpointError as exc:
        rec.calls = [
            *rec.calls,
            {
                "role": role,
                "model": client.model,
                "system": system.tag,
                "user": user_text,
                "error": str(exc),
            },
        ]
        raise
    rec.calls = [
        *rec.calls,
        {
            "role": role,
            "model": client.model,
            "system": system.tag,
            "user": user_text,
            "raw": reply.text,
            "usage": dict(reply.usage),
            "seconds": round(reply.seconds, 3),
        },
    ]
    rec.usage = {**rec.usage, role: {**reply.usage, "seconds": round(reply.seconds, 3)}}
    return reply.text


def record_parsed(rec: ReasoningAnnotation, fields: Any) -> None:
    calls = list(rec.calls)
    calls[-1] = {**calls[-1], "parsed": fields}
    rec.calls = calls


@dataclass(frozen=True)
class NewSample:
    """A sample a record creates (or updates, on a re-annotation)."""

    dataset_id: int
    image_id: int
    external_id: str
    question: str
    category: str
    mask: dict[str, Any]
    status: str
    reasoning: str | None


def store_results(
    store: Store,
    results: list[tuple[ReasoningAnnotation, NewSample | None]],
    user: str,
) -> list[ReasoningAnnotation]:
    """Write the records (and the samples they made) in one transaction."""

    def write(s: Session) -> list[ReasoningAnnotation]:
        for rec, new in results:
            if new is not None:
                source = f"reasoning:{rec.builder}:{annotator_model(rec)}"
                smp = s.scalar(
                    select(Sample).where(
                        Sample.dataset_id == new.dataset_id, Sample.external_id == new.external_id
                    )
                )
                if smp is None:
                    smp = insert_sample(
                        s,
                        s.get(Dataset, new.dataset_id),
                        s.get(Image, new.image_id),
                        external_id=new.external_id,
                        question=new.question,
                        category=new.category,
                        source=source[:200],
                        status=new.status,
                        mask=new.mask,
                        ignore=None,
                    )
                    smp.reasoning = new.reasoning
                    smp.reasoning_status = "pending" if new.reasoning else None
                    smp.reasoning_source = source[:300] if new.reasoning else None
                else:
                    who = user or "annotator"
                    note = f"re-annotated ({rec.verdict})"
                    record_change(s, smp, "question", new.question, who, note)
                    record_change(s, smp, "status", new.status, who, note)
                    if new.reasoning:
                        set_reasoning(s, smp, new.reasoning, source, who, note)
                rec.sample_id = smp.id
            s.add(rec)
            if rec.builder == "answer" and rec.verdict == "accepted" and rec.sample_id:
                # a sample with a known answer gets its reasoning as a revision, in the same
                # transaction as the record (a crash leaves neither)
                s.flush()
                smp = repo.get_sample(s, rec.sample_id, for_update=True)
                source = f"reasoning:answer:{annotator_model(rec)}"
                set_reasoning(
                    s, smp, rec.reasoning or "", source, user or "annotator", f"annotation {rec.id}"
                )
        s.flush()
        for rec, _ in results:
            s.expunge(rec)
        return [r for r, _ in results]

    return store.run(write)


def annotator_model(rec: ReasoningAnnotation) -> str:
    for c in reversed(rec.calls or []):
        if c.get("role") in ("annotator", "generator"):
            return str(c.get("model", ""))
    return ""


def set_reasoning(s: Session, smp: Sample, text: str, source: str, who: str, note: str) -> None:
    record_change(s, smp, "reasoning", text, who, note)
    record_change(s, smp, "reasoning_status", "pending", who, note)
    smp.reasoning_source = source[:300]


def error_record(rec: ReasoningAnnotation, stage: str, exc: Exception) -> ReasoningAnnotation:
    rec.verdict, rec.stage, rec.error = "error", stage, f"{stage}: {exc}"
    return rec


@dataclass(frozen=True)
class Item:
    """What one builder needs of one item, read in one short session."""

    dataset_id: int
    image_id: int
    image_path: Path
    external_id: str
    question: str
    answer: str = ""
    full_answer: str = ""
    # instances: (target id, external id, box xyxy, RLE)
    members: tuple[tuple[int, str, list[int], dict[str, Any]], ...] = ()
    categories: tuple[str, ...] = ()
    sample_id: int | None = None
    # every instance of the image of ``categories`` (their category groups), for the category
    # builder's semantic mask (App. D: "merge all instances belonging to the queried category")
    category_members: tuple[tuple[int, str, list[int], dict[str, Any]], ...] = ()


def read_item(s: Session, key: str) -> Item:
    kind, _, raw_id = key.partition(":")
    i = int(raw_id)
    if kind == "vqa":
        v = s.get(VqaItem, i)
        if v is None:
            raise repo.NotFoundError(f"VQA item {i} not found")
        return Item(
            v.dataset_id,
            v.image_id,
            Path(v.image.path),
            v.external_id,
            v.question,
            v.answer,
            v.full_answer,
        )
    if kind == "group":
        g = s.get(InstanceGroup, i)
        if g is None:
            raise repo.NotFoundError(f"instance group {i} not found")
        ts = list(s.scalars(select(Target).where(Target.group_id == i).order_by(Target.id)))
        cats = tuple(dict.fromkeys(t.category_name for t in ts)) or (g.category_name,)
        same = list(
            s.scalars(
                select(Target)
                .join(InstanceGroup, InstanceGroup.id == Target.group_id)
                .where(
                    InstanceGroup.image_id == g.image_id,
                    InstanceGroup.dataset_id == g.dataset_id,
                    InstanceGroup.kind == "category",
                    Target.category_name.in_(cats),
                )
                .order_by(Target.id)
            )
        )
        return Item(
            g.dataset_id,
            g.image_id,
            Path(g.image.path),
            g.external_id,
            (g.description or "").strip(),
            members=tuple((t.id, t.external_id, list(t.box_xyxy), t.rle) for t in ts),
            categories=cats,
            category_members=tuple((t.id, t.external_id, list(t.box_xyxy), t.rle) for t in same),
        )
    if kind == "sample":
        smp = repo.get_sample(s, i)
        mask = repo.current_mask(s, i)
        from core.masks import encode_rle

        return Item(
            smp.dataset_id,
            smp.image_id,
            repo.image_path(smp),
            smp.external_id,
            smp.question,
            members=() if mask is None else ((0, "", [], encode_rle(mask)),),
            sample_id=i,
        )
    raise AnnotationError(f"unknown item key {key!r}")
