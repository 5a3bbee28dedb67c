"""The App. D builders: samples with a chain-of-thought reasoning text for evaluator training.

Every builder goes item by item, at most ``concurrency`` items at a time, through the
OpenAI-compatible client (:class:`core.llm_client.ChatClient`: deadline, retries, key masking),
and records each item's pass as a :class:`~core.store.models.ReasoningAnnotation` (prompts and
their versions, each call's raw answer, parsed fields, tokens and seconds, the verdict and its
reasons). Failed requests and unparsable answers are recorded as ``error`` and change nothing
else; ``resume`` skips the items that are done and tries the errors again.

- ``gqa`` (imported :class:`~core.store.models.VqaItem`): the text-only filter of Figure S7
  (Score 0 → rejected, ``stage`` ``filter``) → SAM 3 prompted with the short answer, kept only
  when it returns exactly one mask (else rejected, ``stage`` ``sam3``) → the mask's tightest box
  drawn in red → Figure S8 checks the box against the answer and writes the reasoning. Kept:
  a ``pending`` sample (the question, SAM 3's mask, the reasoning); discarded: a ``rejected``
  sample with the mask, for review.
- ``spatial`` (imported category groups of at least two instances, as the spatial split of
  App. C): every instance boxed in red with its target ID → Figure S9 writes one referring
  question with its reasoning per instance → one ``pending`` sample per instance it covered.
- ``category`` (imported ``groups`` with a description, the LISA++-style query): all members merged
  into one mask, every member boxed in red, the category names as the short answer → Figure
  S10 verifies and writes the reasoning (sample ``pending``), or marks it invalid (``rejected``).
- ``answer`` (samples that have a mask and no reasoning yet: ReasonSeg train, SGDR, geometric): the mask's
  parts boxed in red → a prompt not from the paper, in the manner of S10 (the paper annotated
  ReasonSeg train this way without printing its prompt) → the reasoning is set on the sample,
  recorded as a revision; the sample's own status does not change.

New samples get ``reasoning_status`` ``pending`` when they have a reasoning; review accepts,
edits or rejects it (:func:`core.store.review.decide_reasoning`, :func:`~core.store.review.edit_reasoning`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.benchmark.prompts import Prompt, load_prompt
from core.evaldata.answers import (
    AnswerError,
    parse_annotator,
    parse_category_annotator,
    parse_filter,
    parse_spatial_reasoning,
)
from core.evaldata.render import component_boxes, draw_red_boxes
from core.images import ImageError, load_image_rgb
from core.importers.common import insert_sample
from core.llm_client import ChatClient, EndpointError
from core.masks import bbox_xyxy, decode_rle
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

BUILDERS = ("gqa", "spatial", "category", "answer")
DONE_VERDICTS = ("accepted", "rejected", "skipped")  # an error is retried on resume
MIN_GROUP_SIZE = 2  # S9 asks for questions that tell instances of one category apart

Progress = Callable[[int, int, str], None]

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
        lines += [f"  error {name}: {msg}" for name, msg in self.errors]
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


def _record(builder: str, key: str, prompts: dict[str, Prompt], user: str) -> ReasoningAnnotation:
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


def _call(
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


def _parsed(rec: ReasoningAnnotation, fields: Any) -> None:
    calls = list(rec.calls)
    calls[-1] = {**calls[-1], "parsed": fields}
    rec.calls = calls


@dataclass(frozen=True)
class _NewSample:
    """A sample a record creates (or updates, on a re-annotation)."""

    dataset_id: int
    image_id: int
    external_id: str
    question: str
    category: str
    mask: dict[str, Any]
    status: str
    reasoning: str | None


def _store_results(
    store: Store,
    results: list[tuple[ReasoningAnnotation, _NewSample | None]],
    user: str,
) -> list[ReasoningAnnotation]:
    """Write the records (and the samples they made) in one transaction."""

    def write(s: Session) -> list[ReasoningAnnotation]:
        for rec, new in results:
            if new is not None:
                source = f"reasoning:{rec.builder}:{_annotator_model(rec)}"
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
                        _set_reasoning(s, smp, new.reasoning, source, who, note)
                rec.sample_id = smp.id
            s.add(rec)
            if rec.builder == "answer" and rec.verdict == "accepted" and rec.sample_id:
                # a sample with a known answer gets its reasoning as a revision, in the same
                # transaction as the record (a crash leaves neither)
                s.flush()
                smp = repo.get_sample(s, rec.sample_id, for_update=True)
                source = f"reasoning:answer:{_annotator_model(rec)}"
                _set_reasoning(
                    s, smp, rec.reasoning or "", source, user or "annotator", f"annotation {rec.id}"
                )
        s.flush()
        for rec, _ in results:
            s.expunge(rec)
        return [r for r, _ in results]

    return store.run(write)


def _annotator_model(rec: ReasoningAnnotation) -> str:
    for c in reversed(rec.calls or []):
        if c.get("role") in ("annotator", "generator"):
            return str(c.get("model", ""))
    return ""


def _set_reasoning(s: Session, smp: Sample, text: str, source: str, who: str, note: str) -> None:
    record_change(s, smp, "reasoning", text, who, note)
    record_change(s, smp, "reasoning_status", "pending", who, note)
    smp.reasoning_source = source[:300]


def _error(rec: ReasoningAnnotation, stage: str, exc: Exception) -> ReasoningAnnotation:
    rec.verdict, rec.stage, rec.error = "error", stage, f"{stage}: {exc}"
    return rec


@dataclass(frozen=True)
class _Item:
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


def _read_item(s: Session, key: str) -> _Item:
    kind, _, raw_id = key.partition(":")
    i = int(raw_id)
    if kind == "vqa":
        v = s.get(VqaItem, i)
        if v is None:
            raise repo.NotFoundError(f"VQA item {i} not found")
        return _Item(
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
        return _Item(
            g.dataset_id,
            g.image_id,
            Path(g.image.path),
            g.external_id,
            (g.description or "").strip(),
            members=tuple((t.id, t.external_id, list(t.box_xyxy), t.rle) for t in ts),
            categories=tuple(dict.fromkeys(t.category_name for t in ts)) or (g.category_name,),
        )
    if kind == "sample":
        smp = repo.get_sample(s, i)
        mask = repo.current_mask(s, i)
        from core.masks import encode_rle

        return _Item(
            smp.dataset_id,
            smp.image_id,
            repo.image_path(smp),
            smp.external_id,
            smp.question,
            members=() if mask is None else ((0, "", [], encode_rle(mask)),),
            sample_id=i,
        )
    raise AnnotationError(f"unknown item key {key!r}")


class _Annotator:
    """One builder's clients, prompts and models, shared by the worker threads."""

    def __init__(
        self,
        store: Store,
        builder: str,
        annotator: ChatClient,
        *,
        filter_client: ChatClient | None = None,
        sam3: Any = None,
        user: str = "",
    ) -> None:
        self.store, self.builder, self.user = store, builder, user
        self.prompts = builder_prompts(builder)
        self.annotator = annotator
        self.filter_client = filter_client or annotator
        self.sam3 = sam3

    def one(self, key: str) -> list[ReasoningAnnotation]:
        t0 = time.perf_counter()
        item = self.store.run(lambda s: _read_item(s, key), write=False)
        results = getattr(self, f"_{self.builder}")(key, item)
        for rec, _ in results:
            rec.seconds = time.perf_counter() - t0
        return _store_results(self.store, results, self.user)

    def _new(self) -> ReasoningAnnotation:
        return _record(self.builder, "", self.prompts, self.user)

    # -- gqa: S7 → SAM 3 → S8 ----------------------------------------------------------------
    def _gqa(self, key: str, it: _Item) -> list[tuple[ReasoningAnnotation, _NewSample | None]]:
        p = self.prompts
        rec = self._new()
        rec.item_key, rec.question, rec.answer = key, it.question, it.answer
        try:
            raw = _call(
                rec,
                self.filter_client,
                "filter",
                p["filter"],
                p["filter_user"].format(
                    question=it.question, answer=it.answer, full_answer=it.full_answer
                ),
                [],
            )
            flt = parse_filter(raw)
        except (EndpointError, AnswerError) as exc:
            return [(_error(rec, "filter", exc), None)]
        _parsed(rec, flt.fields)
        if not flt.usable:
            rec.verdict, rec.stage, rec.reasons = "rejected", "filter", flt.reason or "Score 0"
            return [(rec, None)]
        try:
            image = load_image_rgb(it.image_path)
        except ImageError as exc:
            return [(_error(rec, "image", exc), None)]
        try:
            masks, scores = self.sam3.segment(image, it.answer)
        except (ValueError, RuntimeError) as exc:
            return [(_error(rec, "sam3", exc), None)]
        rec.details = {
            "sam3": {
                "model": getattr(self.sam3, "name", ""),
                "masks": len(masks),
                "scores": [round(float(x), 4) for x in scores],
                "threshold": getattr(self.sam3, "threshold", None),
            }
        }
        if len(masks) != 1:
            rec.verdict, rec.stage = "rejected", "sam3"
            rec.reasons = (
                f"SAM 3 returned {len(masks)} masks for {it.answer!r}; exactly one is kept"
            )
            return [(rec, None)]
        return self._gqa_annotate(rec, it, image, masks[0])

    def _gqa_annotate(
        self, rec: ReasoningAnnotation, it: _Item, image: np.ndarray, mask: np.ndarray
    ) -> list[tuple[ReasoningAnnotation, _NewSample | None]]:
        """Figure S8 on the mask's tightest box: keep (a pending sample) or discard."""
        from core.masks import encode_rle

        p = self.prompts
        box = list(bbox_xyxy(mask) or (0, 0, 0, 0))
        rec.details = {**rec.details, "box_xyxy": box}
        try:
            raw = _call(
                rec,
                self.annotator,
                "annotator",
                p["annotator"],
                p["annotator_user"].format(question=it.question, answer=it.answer),
                [draw_red_boxes(image, [box])],
            )
            ann = parse_annotator(raw)
        except (EndpointError, AnswerError) as exc:
            return [(_error(rec, "annotator", exc), None)]
        _parsed(rec, ann.fields)
        rec.stage, rec.reasons = "annotator", ann.reason
        rec.verdict = "accepted" if ann.keep else "rejected"
        rec.reasoning = ann.reasoning
        return [
            (
                rec,
                _NewSample(
                    it.dataset_id,
                    it.image_id,
                    f"gqa/{it.external_id}",
                    it.question,
                    SAMPLE_CATEGORY["gqa"],
                    encode_rle(mask),
                    "pending" if ann.keep else "rejected",
                    ann.reasoning,
                ),
            )
        ]

    # -- spatial: S9 ---------------------------------------------------------------------------
    def _spatial(self, key: str, it: _Item) -> list[tuple[ReasoningAnnotation, _NewSample | None]]:
        p = self.prompts
        rec = self._new()
        rec.item_key = key
        ids = [str(k) for k in range(1, len(it.members) + 1)]
        try:
            image = draw_red_boxes(
                load_image_rgb(it.image_path), [m[2] for m in it.members], labels=ids
            )
        except ImageError as exc:
            return [(_error(rec, "image", exc), None)]
        try:
            raw = _call(
                rec,
                self.annotator,
                "generator",
                p["annotator"],
                p["annotator_user"].format(category=it.categories[0], target_ids=", ".join(ids)),
                [image],
            )
            found = parse_spatial_reasoning(raw)
        except (EndpointError, AnswerError) as exc:
            return [(_error(rec, "generator", exc), None)]
        by_id = {q.target_id: q for q in found}
        _parsed(rec, [q.__dict__ for q in found])
        stray = sorted(set(by_id) - set(range(1, len(it.members) + 1)))
        out: list[tuple[ReasoningAnnotation, _NewSample | None]] = []
        for k, (tid, ext, _box, rle) in enumerate(it.members, start=1):
            r = rec if k == 1 else self._copy(rec)
            r.details = {
                "target_id": tid,
                "label": k,
                **({"unknown_labels": stray} if stray else {}),
            }
            r.stage = "generator"
            q = by_id.get(k)
            if q is None:
                r.verdict, r.reasons = "skipped", f"no question for target ID {k}"
                out.append((r, None))
                continue
            r.verdict, r.question, r.reasoning = "accepted", q.question, q.reasoning
            r.reasons = f"relation: {q.relation}" if q.relation else ""
            out.append(
                (
                    r,
                    _NewSample(
                        it.dataset_id,
                        it.image_id,
                        f"spatial_reasoning/{ext}",
                        q.question,
                        SAMPLE_CATEGORY["spatial"],
                        rle,
                        "pending",
                        q.reasoning,
                    ),
                )
            )
        return out

    def _copy(self, rec: ReasoningAnnotation) -> ReasoningAnnotation:
        c = self._new()
        c.item_key, c.endpoint, c.calls, c.usage = rec.item_key, rec.endpoint, rec.calls, {}
        return c  # tokens are counted once, on the group's first record

    # -- category: S10 ------------------------------------------------------------------------
    def _category(self, key: str, it: _Item) -> list[tuple[ReasoningAnnotation, _NewSample | None]]:
        from core.masks import encode_rle

        p = self.prompts
        rec = self._new()
        answer = ", ".join(it.categories)
        rec.item_key, rec.question, rec.answer = key, it.question, answer
        try:
            img = load_image_rgb(it.image_path)
        except ImageError as exc:
            return [(_error(rec, "image", exc), None)]
        merged = np.zeros(img.shape[:2], bool)
        for _tid, _ext, _box, rle in it.members:
            merged |= decode_rle(rle, img.shape[:2])
        boxes = [m[2] for m in it.members]
        rec.details = {"targets": [m[0] for m in it.members], "boxes_xyxy": boxes}
        try:
            raw = _call(
                rec,
                self.annotator,
                "annotator",
                p["annotator"],
                p["annotator_user"].format(question=it.question, answer=answer),
                [draw_red_boxes(img, boxes)],
            )
            ann = parse_category_annotator(raw)
        except (EndpointError, AnswerError) as exc:
            return [(_error(rec, "annotator", exc), None)]
        _parsed(rec, ann.fields)
        rec.stage, rec.reasons, rec.reasoning = "annotator", ann.reason, ann.reasoning
        rec.verdict = "accepted" if ann.keep else "rejected"
        return [
            (
                rec,
                _NewSample(
                    it.dataset_id,
                    it.image_id,
                    f"category/{it.external_id}",
                    it.question,
                    SAMPLE_CATEGORY["category"],
                    encode_rle(merged),
                    "pending" if ann.keep else "rejected",
                    ann.reasoning,
                ),
            )
        ]

    # -- answer: a known mask -----------------------------------------------------------------
    def _answer(self, key: str, it: _Item) -> list[tuple[ReasoningAnnotation, _NewSample | None]]:
        p = self.prompts
        rec = self._new()
        rec.item_key, rec.question, rec.sample_id = key, it.question, it.sample_id
        if not it.members:
            rec.verdict, rec.reasons = "skipped", "the sample has no mask"
            return [(rec, None)]
        try:
            img = load_image_rgb(it.image_path)
        except ImageError as exc:
            return [(_error(rec, "image", exc), None)]
        boxes = component_boxes(decode_rle(it.members[0][3], img.shape[:2]))
        if not boxes:
            rec.verdict, rec.reasons = "skipped", "the sample's mask is empty"
            return [(rec, None)]
        rec.details = {"boxes_xyxy": boxes}
        try:
            raw = _call(
                rec,
                self.annotator,
                "annotator",
                p["annotator"],
                p["annotator_user"].format(question=it.question),
                [draw_red_boxes(img, boxes)],
            )
            ann = parse_category_annotator(raw)
        except (EndpointError, AnswerError) as exc:
            return [(_error(rec, "annotator", exc), None)]
        _parsed(rec, ann.fields)
        rec.stage, rec.reasons, rec.reasoning = "annotator", ann.reason, ann.reasoning
        rec.verdict = "accepted" if ann.keep else "rejected"
        return [(rec, None)]


# -- many items ---------------------------------------------------------------------------------


def annotate(
    store: Store,
    builder: str,
    annotator: ChatClient,
    *,
    filter_client: ChatClient | None = None,
    sam3: Any = None,
    resume: bool = False,
    limit: int | None = None,
    dataset: str | None = None,
    category: str | None = None,
    status: str | None = None,
    user: str = "",
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> BuildReport:
    """Run ``builder`` (module docstring) over every eligible item not done yet, at most
    ``annotator.concurrency`` at a time.

    ``filter_client``: the S7 model of ``gqa`` (default: ``annotator``). ``sam3``: an object with
    ``segment(image_rgb, text) -> (masks, scores)`` and ``name``
    (:class:`core.models.sam3_text.Sam3TextSegmenter`), needed by ``gqa``. ``dataset`` limits
    the items to one dataset; ``category`` / ``status`` the samples of ``answer``.
    """
    if builder == "gqa" and sam3 is None:
        raise AnnotationError("the gqa builder needs SAM 3 (--sam3 CHECKPOINT_DIR)")
    worker = _Annotator(
        store, builder, annotator, filter_client=filter_client, sam3=sam3, user=user
    )
    keys = items_to_annotate(
        store,
        builder,
        resume=resume,
        limit=limit,
        dataset=dataset,
        category=category,
        status=status,
    )
    report = BuildReport()
    lock = threading.Lock()
    done = 0
    t0 = time.perf_counter()

    def one(key: str) -> None:
        nonlocal done
        if should_cancel and should_cancel():
            return
        recs = worker.one(key)
        with lock:
            for rec in recs:
                report.verdicts[rec.verdict] += 1
                if rec.error:
                    report.errors.append((key, rec.error))
                if rec.verdict == "accepted":
                    report.samples += 1
                for call in (rec.usage or {}).values():
                    report.tokens.update({k: v for k, v in call.items() if k.endswith("_tokens")})
            done += 1
            if progress:
                progress(done, len(keys), recs[-1].verdict if recs else "")

    if progress:
        progress(0, len(keys), "start")
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(annotator.concurrency, len(keys) or 1)),
        thread_name_prefix="reasoning",
    )
    try:
        for f in [pool.submit(one, k) for k in keys]:
            f.result()
    except BaseException:
        # Ctrl+C or a store failure: items not started stay to do (resume); requests in
        # flight finish and are recorded
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    report.seconds = time.perf_counter() - t0
    return report


def reannotate(
    store: Store,
    sample_id: int,
    *,
    user: str,
    api_key: str | None = None,
    endpoint: str | None = None,
    model: str | None = None,
    **client_options: Any,
) -> list[ReasoningAnnotation]:
    """Ask the endpoint and annotator model of the sample's latest annotation again
    (``endpoint`` / ``model`` given: those instead).

    ``gqa``: Figure S8 only, on the box of the sample's current mask (SAM 3 and the S7 filter
    are not run again); ``spatial``: Figure S9 for the sample's group, of which only this
    sample's instance is used; ``category`` / ``answer``: their prompt again. The new question
    (S9), status and reasoning are recorded as ``user``'s revisions; a failed attempt adds an
    ``error`` annotation and changes nothing else. The key comes from ``api_key`` or
    ``$REA2SEG_EVAL_API_KEY``.
    """
    import os

    from core.llm_client import API_KEY_ENV
    from core.masks import encode_rle

    user = (user or "").strip()
    if not user:
        raise AnnotationError("a user name is required to ask for a re-annotation")

    def last(s: Session) -> tuple[ReasoningAnnotation | None, str, np.ndarray | None]:
        rec = s.scalar(
            select(ReasoningAnnotation)
            .where(ReasoningAnnotation.sample_id == sample_id)
            .order_by(ReasoningAnnotation.id.desc())
            .limit(1)
        )
        smp = repo.get_sample(s, sample_id)
        if rec is not None:
            s.expunge(rec)
        return rec, smp.external_id, repo.current_mask(s, sample_id)

    prev, ext, mask = store.run(last, write=False)
    if prev is None:
        raise AnnotationError(f"sample {sample_id} has no reasoning annotation to ask again")
    endpoint = endpoint or prev.endpoint
    model = model or _annotator_model(prev)
    if not endpoint or not model:
        raise AnnotationError(
            f"sample {sample_id}: its annotation has no endpoint or model recorded; give them"
        )
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    client = ChatClient(endpoint, model, key, **client_options)
    worker = _Annotator(store, prev.builder, client, user=user)
    t0 = time.perf_counter()
    item = store.run(lambda s: _read_item(s, prev.item_key), write=False)
    if prev.builder == "gqa":
        rec = worker._new()
        rec.item_key, rec.question, rec.answer = prev.item_key, item.question, item.answer
        rec.details = {"recheck": "S8 on the sample's current mask"}
        if mask is None or not mask.any():
            raise AnnotationError(f"sample {sample_id} has no mask to draw the box of")
        try:
            image = load_image_rgb(item.image_path)
        except ImageError as exc:
            results = [(_error(rec, "image", exc), None)]
        else:
            results = worker._gqa_annotate(rec, item, image, mask)
        if results[0][1] is not None:
            results = [(results[0][0], _replace(results[0][1], mask=encode_rle(mask)))]
    else:
        results = getattr(worker, f"_{prev.builder}")(prev.item_key, item)
        if prev.builder == "spatial":
            mine = [r for r in results if r[1] is not None and r[1].external_id == ext]
            results = mine or [r for r in results if r[1] is None][:1]
    for rec, _ in results:
        rec.seconds = time.perf_counter() - t0
        if rec.sample_id is None and rec.builder != "answer":
            rec.sample_id = sample_id  # a failed attempt stays in the sample's history
    return _store_results(store, results, user)


def _replace(new: _NewSample, **changes: Any) -> _NewSample:
    from dataclasses import replace

    return replace(new, **changes)
