"""Question generation and verification for the instance-based splits (paper §3, App. C).

For one target: render the prompt image (:mod:`core.benchmark.render`), send the generator's
prompt (Figure S3 spatial, S5 multi-step), parse its answer, send the verifier's prompt
(Figure S4 spatial; a prompt not from the paper for multi-step) and record everything in a
:class:`~core.store.models.QuestionGeneration`. A question the verifier accepts becomes a
``pending`` sample (the verifier's rewritten question, the target's mask as ground truth,
category = the split); one it rejects becomes a ``rejected`` sample (the generator's
expression), kept for review. Discriminative targets get the fixed questions of App. C.

Eligibility (App. C): spatial targets belong to a category group of at least two instances;
multi-step targets to any group (category or gRefCOCO-style) of at least two.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.exc import OperationalError, StatementError
from sqlalchemy.orm import Session

from core.benchmark import claims
from core.benchmark.answers import (
    AnswerError,
    parse_multi_step_generator,
    parse_spatial_generator,
    parse_verifier,
)
from core.benchmark.prompts import Prompt, load_prompt
from core.benchmark.render import draw_prompt_boxes
from core.images import ImageError, load_image_rgb
from core.importers.common import insert_sample
from core.llm_client import ChatClient, EndpointError
from core.store import Store, repo
from core.store.models import (
    Dataset,
    Image,
    InstanceGroup,
    QuestionGeneration,
    Sample,
    Target,
)
from core.store.review import record_change
from core.textsafe import json_safe, storable_text, terminal_text
from core.vocab import DISCRIMINATIVE_KINDS, SPLITS, VERDICTS

# App. C: the spatial split needs at least two instances of the same category.
MIN_GROUP_SIZE = 2
DONE_VERDICTS = tuple(v for v in VERDICTS if v != "error")  # an error is retried on --resume

MAX_QUESTION_CHARS = 1000
"""Longest generated expression or question kept (characters; setting ``MAX_QUESTION_CHARS``).
A longer one is recorded as an error and becomes no sample; an over-long expression is not sent
to the verifier. The paper's questions are one sentence. Not from the paper."""

Progress = Callable[[int, int, str], None]
REGENERATED_NOTE = "re-generated"  # the note of the revisions a re-generation records


class GenerationError(ValueError):
    """A generation request that cannot start (unknown split, nothing to resume, …)."""


@dataclass(frozen=True)
class SplitPrompts:
    generator: Prompt | None
    generator_user: Prompt | None
    verifier: Prompt | None
    verifier_user: Prompt | None
    fixed: Prompt | None = None

    def versions(self) -> dict[str, str]:
        roles = ("generator", "generator_user", "verifier", "verifier_user", "fixed")
        return {r: p.tag for r in roles if (p := getattr(self, r)) is not None}


def split_prompts(split: str, kind: str | None = None) -> SplitPrompts:
    """The newest prompt files of ``split`` (``kind`` picks the discriminative fixed question)."""
    if split == "spatial":
        return SplitPrompts(
            load_prompt("spatial_generator"),
            load_prompt("spatial_generator_user"),
            load_prompt("spatial_verifier"),
            load_prompt("spatial_verifier_user"),
        )
    if split == "multi_step":
        return SplitPrompts(
            load_prompt("multi_step_generator"),
            load_prompt("multi_step_generator_user"),
            load_prompt("multi_step_verifier"),
            load_prompt("multi_step_verifier_user"),
        )
    if split == "discriminative":
        if kind not in DISCRIMINATIVE_KINDS:
            raise GenerationError(
                f"the discriminative split needs --kind {' or '.join(DISCRIMINATIVE_KINDS)} "
                "(occlusion questions are written by hand, App. C)"
            )
        return SplitPrompts(None, None, None, None, load_prompt(f"{kind}_question"))
    raise GenerationError(f"unknown split {split!r}; use one of {list(SPLITS)}")


@dataclass
class GenerationReport:
    verdicts: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    tokens: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    paid: int = 0  # requests the server answered (billed), usable or not
    claimed_elsewhere: int = 0  # targets another run held (it asks about them)

    def summary(self) -> str:
        v = ", ".join(
            f"{k} {self.verdicts.get(k, 0)}"
            for k in ("accepted", "rejected", "skipped", "error", "fixed")
            if self.verdicts.get(k) or k in ("accepted", "rejected")
        )
        lines = [f"targets {sum(self.verdicts.values())}: {v}; requests paid {self.paid}"]
        if self.claimed_elsewhere:
            lines.append(f"left to another run (claimed there): {self.claimed_elsewhere}")
        if self.tokens:
            lines.append("tokens: " + ", ".join(f"{k} {n}" for k, n in sorted(self.tokens.items())))
        lines += [f"  error {name}: {terminal_text(msg, 300)}" for name, msg in self.errors]
        return "\n".join(lines)


# -- which targets ------------------------------------------------------------------------------


def _group_sizes(s: Session):
    return select(Target.group_id, func.count().label("n")).group_by(Target.group_id).subquery()


def _eligible(s: Session, split: str, dataset: str | None):
    q = select(Target.id).join(InstanceGroup, InstanceGroup.id == Target.group_id)
    if split in ("spatial", "multi_step"):
        sizes = _group_sizes(s)
        q = q.join(sizes, sizes.c.group_id == Target.group_id).where(sizes.c.n >= MIN_GROUP_SIZE)
        if split == "spatial":
            q = q.where(InstanceGroup.kind == "category")
    elif split == "discriminative":
        q = q.where(InstanceGroup.kind == "category")
    else:
        raise GenerationError(f"unknown split {split!r}; use one of {list(SPLITS)}")
    if dataset:
        q = q.where(Target.dataset_id == _dataset_id(s, dataset))
    return q


def eligible_target_ids(s: Session, split: str, *, dataset: str | None = None) -> list[int]:
    """Targets the split can use, in id order (see the module docstring)."""
    return list(s.scalars(_eligible(s, split, dataset).order_by(Target.id)))


def _dataset_id(s: Session, name: str) -> int:
    ds = s.scalar(select(Dataset.id).where(Dataset.name == name))
    if ds is None:
        raise GenerationError(f"no dataset {name!r} in the store")
    return ds


def _done_clause(retry_paid: bool):
    """Generations that end a target: a finished verdict, or (unless ``retry_paid``) an error
    whose request was answered and billed (asking again would pay again)."""
    finished = QuestionGeneration.verdict.in_(DONE_VERDICTS)
    return finished if retry_paid else or_(finished, QuestionGeneration.paid > 0)


def done_target_ids(s: Session, split: str, *, retry_paid: bool = False) -> set[int]:
    q = select(QuestionGeneration.target_id).where(
        QuestionGeneration.split == split, _done_clause(retry_paid)
    )
    return set(s.scalars(q))


def is_done(
    s: Session,
    target_id: int,
    split: str,
    *,
    retry_paid: bool = False,
    after_id: int | None = None,
) -> bool:
    """Whether the target has a generation that ends it (see :func:`_done_clause`), or any
    generation with an id above ``after_id`` (another run asked about it meanwhile)."""
    done = _done_clause(retry_paid)
    if after_id is not None:
        done = or_(done, QuestionGeneration.id > after_id)
    q = select(QuestionGeneration.id).where(
        QuestionGeneration.target_id == target_id, QuestionGeneration.split == split, done
    )
    return s.scalar(q.limit(1)) is not None


def targets_to_generate(
    store: Store,
    split: str,
    *,
    resume: bool,
    limit: int | None = None,
    dataset: str | None = None,
    retry_paid: bool = False,
) -> list[int]:
    """Eligible targets without a finished generation for ``split``.

    Without ``resume``, a split that already has generations raises :class:`GenerationError`
    (so a repeated command never pays twice); with it, finished targets are skipped and failed
    ones are tried again, except those whose failed request was paid for (an unusable reply)
    unless ``retry_paid``.
    """

    def q(s: Session) -> tuple[list[int], set[int], int]:
        ids = eligible_target_ids(s, split, dataset=dataset)
        started = s.scalar(
            select(func.count())
            .select_from(QuestionGeneration)
            .where(
                QuestionGeneration.split == split,
                QuestionGeneration.target_id.in_(_eligible(s, split, dataset)),
            )
        )
        return ids, done_target_ids(s, split, retry_paid=retry_paid), int(started or 0)

    ids, done, started = store.run(q, write=False)
    if started and not resume:
        raise GenerationError(
            f"the store already has {started} {split} generations; pass --resume to continue them"
        )
    todo = [i for i in ids if i not in done]
    return todo[:limit] if limit is not None else todo


# -- one target ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TargetView:
    id: int
    external_id: str
    dataset_id: int
    image_id: int
    image_path: Path
    category: str
    description: str
    box: list[int]
    others: list[list[int]]
    rle: dict[str, Any]


def _target_view(s: Session, target_id: int) -> _TargetView:
    t = s.get(Target, target_id)
    if t is None:
        raise repo.NotFoundError(f"target {target_id} not found")
    others = [
        o.box_xyxy
        for o in s.scalars(
            select(Target)
            .where(Target.group_id == t.group_id, Target.id != t.id)
            .order_by(Target.id)
        )
    ]
    g = t.group
    return _TargetView(
        t.id,
        t.external_id,
        t.dataset_id,
        g.image_id,
        Path(g.image.path),
        t.category_name,
        g.description or t.category_name,
        list(t.box_xyxy),
        others,
        t.rle,
    )


def prompt_boxes(s: Session, target_id: int) -> tuple[list[int], list[list[int]]]:
    """The boxes of the target's prompt image (App. C): its own box (red) and those of the other
    instances of its group (blue), ``(x0, y0, x1, y1)`` image pixels with exclusive max."""
    tv = _target_view(s, target_id)
    return tv.box, tv.others


def prompt_image(store: Store, target_id: int) -> np.ndarray:
    """The generator's image for a target: uint8 (H, W, 3) RGB with the red and blue boxes."""
    tv = store.run(lambda s: _target_view(s, target_id), write=False)
    return draw_prompt_boxes(load_image_rgb(tv.image_path), tv.box, tv.others)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def generate_one(
    store: Store,
    target_id: int,
    split: str,
    generator: ChatClient | None,
    verifier: ChatClient | None,
    *,
    kind: str | None = None,
    user: str = "",
    holder: str | None = None,
) -> QuestionGeneration:
    """Generate, verify and record one target's question for ``split``; returns the record.

    Request failures and unusable answers (unparsable, wrong types, too long, nested too
    deeply, …) are recorded with verdict ``error`` and ``paid`` set to the requests the server
    answered; nothing else changes, and no reply can stop the call before it is recorded.
    ``user`` names who asked (a re-generation from review); a changed question or status of an
    existing sample is then recorded as that user's revision. ``holder``: the claim on the
    target (:mod:`core.benchmark.claims`) released with the record.
    """
    prompts = split_prompts(split, kind)
    tv = store.run(lambda s: _target_view(s, target_id), write=False)
    rec = QuestionGeneration(
        target_id=target_id,
        split=split,
        prompt_versions=prompts.versions(),
        usage={},
        requested_by=user,
        reasons="",
        created_at=_now(),
    )
    t0 = time.perf_counter()
    status = None
    if prompts.fixed is not None:
        rec.verdict, rec.question, status = "fixed", prompts.fixed.text, "pending"
        rec.reasons = f"fixed question of App. C ({kind})"
    else:
        if generator is None or verifier is None:
            raise GenerationError(f"the {split} split needs a generator and a verifier endpoint")
        try:
            status = _ask(tv, split, prompts, generator, verifier, rec)
        except Exception as exc:  # noqa: BLE001 - a paid reply is recorded whatever it holds
            rec.verdict, rec.question, status = "error", None, None
            rec.error = f"unusable reply ({type(exc).__name__}: {str(exc)[:300]})"
    rec.seconds = time.perf_counter() - t0
    rec.paid = len(rec.usage)
    _make_storable(rec)
    try:
        return store.run(lambda s: _record(s, tv, split, rec, status, user, holder))
    except (StatementError, ValueError, TypeError, RecursionError) as exc:
        if isinstance(exc, OperationalError):  # busy, full, gone: the store's own failure
            raise
        # a value this backend refuses after all: keep the verdict and what was paid, drop texts
        note = f"the reply could not be stored ({type(exc).__name__}); its texts are dropped"
        bare = QuestionGeneration(
            target_id=target_id,
            split=split,
            verdict="error",
            error=note,
            prompt_versions=rec.prompt_versions,
            usage={k: {"dropped": True} for k in rec.usage},
            paid=rec.paid,
            endpoint=rec.endpoint or "",
            generator_model=rec.generator_model or "",
            verifier_model=rec.verifier_model or "",
            requested_by=user,
            reasons="",
            seconds=rec.seconds,
            created_at=rec.created_at,
        )
        return store.run(lambda s: _record(s, tv, split, bare, None, user, holder))


_TEXT_FIELDS = (
    "reasons", "question", "endpoint", "generator_model", "generator_system", "generator_user",
    "generator_raw", "verifier_model", "verifier_system", "verifier_user", "verifier_raw", "error",
)  # fmt: skip


def _make_storable(rec: QuestionGeneration) -> None:
    """Texts without NUL or lone surrogates, JSON without non-finite numbers or deep nesting:
    what SQLite and PostgreSQL both store (PostgreSQL refuses NUL and NaN in JSON)."""
    for name in _TEXT_FIELDS:
        v = getattr(rec, name)
        if v is not None:
            setattr(rec, name, storable_text(v))
    for name in ("generator_parsed", "verifier_parsed", "usage"):
        v = getattr(rec, name)
        if v is not None:
            setattr(rec, name, json_safe(v))


def _paid_error(rec: QuestionGeneration, role: str, exc: EndpointError, seconds: float) -> None:
    """Record a failed request; one the server answered unusably counts as paid."""
    rec.error = f"{role}: {exc}"
    if exc.paid:
        rec.usage = {**rec.usage, role: {"unusable": True, "seconds": round(seconds, 3)}}


def _too_long(text: str, what: str) -> str | None:
    if len(text) > MAX_QUESTION_CHARS:
        return (
            f"{what} is {len(text)} characters, over the {MAX_QUESTION_CHARS}-character limit "
            "(MAX_QUESTION_CHARS)"
        )
    return None


def _ask(
    tv: _TargetView,
    split: str,
    prompts: SplitPrompts,
    generator: ChatClient,
    verifier: ChatClient,
    rec: QuestionGeneration,
) -> str | None:
    rec.endpoint = generator.endpoint
    rec.generator_model, rec.verifier_model = generator.model, verifier.model
    rec.generator_system = prompts.generator.text
    rec.generator_user = prompts.generator_user.format(
        category=tv.category, description=tv.description
    )
    rec.verdict = "error"
    try:
        image = draw_prompt_boxes(load_image_rgb(tv.image_path), tv.box, tv.others)
    except ImageError as exc:
        rec.error = str(exc)
        return None
    t0 = time.perf_counter()
    try:
        reply = generator.chat(rec.generator_system, rec.generator_user, [image])
    except EndpointError as exc:
        _paid_error(rec, "generator", exc, time.perf_counter() - t0)
        return None
    rec.generator_raw, rec.usage = (
        reply.text,
        {"generator": {**reply.usage, "seconds": round(reply.seconds, 3)}},
    )
    parse = parse_spatial_generator if split == "spatial" else parse_multi_step_generator
    try:
        gen = parse(reply.text)
    except AnswerError as exc:
        rec.error = f"generator: {exc}"
        return None
    rec.generator_parsed = gen.fields
    if gen.expression is None:
        rec.verdict, rec.reasons = "skipped", "the generator skipped the target (NA)"
        return None
    if long := _too_long(gen.expression, "the generator's expression"):
        rec.error = long
        return None
    rec.verifier_system = prompts.verifier.text
    rec.verifier_user = prompts.verifier_user.format(
        category=tv.category, description=tv.description, refexp=gen.expression
    )
    t0 = time.perf_counter()
    try:
        vreply = verifier.chat(rec.verifier_system, rec.verifier_user, [image])
    except EndpointError as exc:
        _paid_error(rec, "verifier", exc, time.perf_counter() - t0)
        return None
    rec.verifier_raw = vreply.text
    rec.usage = {**rec.usage, "verifier": {**vreply.usage, "seconds": round(vreply.seconds, 3)}}
    try:
        ver = parse_verifier(vreply.text)
    except AnswerError as exc:
        rec.error = f"verifier: {exc}"
        return None
    rec.verifier_parsed, rec.reasons = ver.fields, ver.reasons
    if ver.accepted and (long := _too_long(ver.question or "", "the verifier's question")):
        rec.error = long
        return None
    if ver.accepted:
        rec.verdict, rec.question = "accepted", ver.question
        return "pending"
    rec.verdict, rec.question = "rejected", gen.expression
    return "rejected"


def _record(
    s: Session,
    tv: _TargetView,
    split: str,
    rec: QuestionGeneration,
    status: str | None,
    user: str,
    holder: str | None = None,
) -> QuestionGeneration:
    ext = f"{split}/{tv.external_id}"
    sample = s.scalar(
        select(Sample).where(Sample.dataset_id == tv.dataset_id, Sample.external_id == ext)
    )
    if sample is not None:
        rec.sample_id = sample.id  # a failed or skipped re-generation stays in the sample's history
    if status is not None and rec.question:
        if sample is None:
            sample = insert_sample(
                s,
                s.get(Dataset, tv.dataset_id),
                s.get(Image, tv.image_id),
                external_id=ext,
                question=rec.question,
                category=split,
                source=f"generated:{rec.generator_model or 'fixed'}",
                status=status,
                mask=tv.rle,
                ignore=None,
            )
        else:
            who = user or "generator"
            note = f"{REGENERATED_NOTE} ({rec.verdict})"
            record_change(s, sample, "question", rec.question, who, note)
            record_change(s, sample, "status", status, who, note)
        rec.sample_id = sample.id
    if holder is not None:
        claims.release(s, tv.id, split, holder)
    s.add(rec)
    s.flush()
    s.expunge(rec)
    return rec


# -- many targets -------------------------------------------------------------------------------


def generate_questions(
    store: Store,
    split: str,
    generator: ChatClient | None,
    verifier: ChatClient | None,
    *,
    kind: str | None = None,
    resume: bool = False,
    limit: int | None = None,
    dataset: str | None = None,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    retry_paid: bool = False,
    claim_lease_s: float = claims.CLAIM_LEASE_S,
) -> GenerationReport:
    """Generate questions for every eligible target of ``split`` not done yet (see
    :func:`targets_to_generate`), at most ``generator.concurrency`` targets at a time.

    Each target is claimed in the store before its first request (:mod:`core.benchmark.claims`):
    a target another live run holds is left to it (``report.claimed_elsewhere``), so runs on
    one store, at once or resumed, never pay twice for a target."""
    split_prompts(split, kind)  # fail early on a bad split / kind / missing prompt file
    # read before listing: a target another run records after this is not asked again
    last_id = store.run(lambda s: s.scalar(select(func.max(QuestionGeneration.id))), write=False)
    ids = targets_to_generate(
        store, split, resume=resume, limit=limit, dataset=dataset, retry_paid=retry_paid
    )
    report = GenerationReport()
    lock = threading.Lock()
    done = 0
    t0 = time.perf_counter()
    holder = claims.new_holder()

    def finished(s: Session, tid: int) -> bool:
        return is_done(s, tid, split, retry_paid=retry_paid, after_id=last_id or 0)

    def one(tid: int) -> None:
        nonlocal done
        if should_cancel and should_cancel():
            return
        if not claims.claim(store, tid, split, holder, claim_lease_s, finished):
            with lock:
                report.claimed_elsewhere += 1
                done += 1
                if progress:
                    progress(done, len(ids), "claimed elsewhere")
            return
        rec = generate_one(store, tid, split, generator, verifier, kind=kind, holder=holder)
        with lock:
            report.paid += rec.paid
            report.verdicts[rec.verdict] += 1
            if rec.error:
                report.errors.append((f"target {tid}", rec.error))
            for call in rec.usage.values():
                report.tokens.update({k: v for k, v in call.items() if k.endswith("_tokens")})
            done += 1
            if progress:
                progress(done, len(ids), rec.verdict)

    workers = generator.concurrency if generator is not None else 1
    if progress:
        progress(0, len(ids), "start")
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(ids) or 1)), thread_name_prefix="questions"
    )
    try:
        with claims.renewing(store, holder, claim_lease_s):
            try:
                for f in [pool.submit(one, tid) for tid in ids]:
                    f.result()
            except BaseException:
                # Ctrl+C or a store failure: targets not started stay to do (``--resume``);
                # the requests in flight finish and are recorded.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        pool.shutdown(wait=True)
    report.seconds = time.perf_counter() - t0
    return report
