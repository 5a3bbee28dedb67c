"""Question quality checks for benchmark authors (not from the paper).

Two optional checks of a generated question, each one request to an OpenAI-compatible endpoint
(:class:`core.llm_client.ChatClient`), recorded with its provenance in a
:class:`~core.store.models.QuestionCheck`:

- **blind** answerability: the model gets the question and the list of categories annotated in
  the image (with instance counts), never the image. If it names the target's category anyway,
  the question is a text shortcut (verdict ``shortcut``); a wrong category or ``NA`` means the
  question needs the image (``needs_image``). An image whose instances all share one category
  offers nothing to pick among: ``uninformative``, recorded without a request.
- **unique**ness: the model gets the image with every annotated instance in a numbered blue box
  (:func:`core.benchmark.render.draw_numbered_boxes`) and lists the boxes the question could
  refer to: exactly the target's box is ``unique``; several boxes ``ambiguous``; one other box
  ``wrong``; none ``none``.

A garbage reply is recorded as ``error`` with ``paid`` = 1 (the server answered and billed it);
``--resume`` asks again only errors nobody paid for (``retry_paid``: those too), and samples
whose question changed since their last check. Runs on one store claim each sample and check
(:mod:`core.benchmark.claims`), so two runs never both pay.

A sample is checkable when it was generated from an imported instance (a target): its
instances are every instance of its image's category groups, numbered in id order.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.benchmark import claims
from core.benchmark.answers import AnswerError, is_na, json_object
from core.benchmark.prompts import load_prompt
from core.llm_client import ChatClient, EndpointError
from core.store import Store
from core.store.models import (
    Dataset,
    InstanceGroup,
    QuestionCheck,
    QuestionCheckClaim,
    QuestionGeneration,
    Sample,
    Target,
)
from core.textsafe import json_safe, storable_text, terminal_text

CHECKS = ("blind", "unique")
CHECK_VERDICTS = {
    "blind": ("shortcut", "needs_image", "uninformative", "error"),
    "unique": ("unique", "ambiguous", "wrong", "none", "error"),
}
"""Each check's verdicts; the first is what the check looks for (a flag for ``blind``, the good
outcome for ``unique``)."""
PROMPTS = {
    "blind": ("question_blind_check", "question_blind_check_user"),
    "unique": ("question_unique_check", "question_unique_check_user"),
}

Progress = Callable[[int, int, str], None]


class CheckError(ValueError):
    """A check request that cannot start (unknown check, checks already there without resume)."""


@dataclass(frozen=True)
class Instance:
    annotation_id: str
    category: str
    box_xyxy: list[int]


@dataclass(frozen=True)
class SampleInstances:
    """What the checks see of a sample: its question, image and the image's instances (numbered
    1… in list order); ``target`` is the index of the sample's own instance in ``instances``."""

    sample_id: int
    question: str
    split: str
    image_path: Path
    instances: list[Instance]
    target: int

    def categories(self) -> Counter:
        return Counter(i.category for i in self.instances)


def _check_name(check: str) -> str:
    if check not in CHECKS:
        raise CheckError(f"unknown check {check!r}; use one of {list(CHECKS)}")
    return check


# -- which samples ------------------------------------------------------------------------------


def _checkable(split: str | None, dataset: str | None):
    q = (
        select(Sample.id)
        .join(QuestionGeneration, QuestionGeneration.sample_id == Sample.id)
        .distinct()
    )
    if split:
        q = q.where(Sample.category == split)
    if dataset:
        q = q.join(Dataset, Dataset.id == Sample.dataset_id).where(Dataset.name == dataset)
    return q


def checkable_sample_ids(
    s: Session, *, split: str | None = None, dataset: str | None = None
) -> list[int]:
    """Samples generated from a target (see the module docstring), in id order."""
    return sorted(s.scalars(_checkable(split, dataset)))


def sample_instances(s: Session, sample_id: int) -> SampleInstances | None:
    """The sample's instances, ``None`` for a sample not generated from a target."""
    smp = s.get(Sample, sample_id)
    gen = s.scalar(
        select(QuestionGeneration)
        .where(QuestionGeneration.sample_id == sample_id)
        .order_by(QuestionGeneration.id.desc())
        .limit(1)
    )
    if smp is None or gen is None:
        return None
    target = gen.target
    rows = s.scalars(
        select(Target)
        .join(InstanceGroup, InstanceGroup.id == Target.group_id)
        .where(
            InstanceGroup.image_id == target.group.image_id,
            InstanceGroup.kind == "category",
            Target.dataset_id == target.dataset_id,
        )
        .order_by(Target.id)
    )
    seen: dict[str, Instance] = {}
    for t in rows:  # an instance appears once, whatever groups it belongs to
        seen.setdefault(t.annotation_id, Instance(t.annotation_id, t.category_name, t.box_xyxy))
    if target.annotation_id not in seen:
        seen[target.annotation_id] = Instance(
            target.annotation_id, target.category_name, target.box_xyxy
        )
    instances = list(seen.values())
    index = [i.annotation_id for i in instances].index(target.annotation_id)
    return SampleInstances(
        sample_id, smp.question, smp.category, Path(smp.image.path), instances, index
    )


def _done(s: Session, sample_id: int, check: str, question: str, retry_paid: bool) -> bool:
    rows = s.execute(
        select(QuestionCheck.verdict, QuestionCheck.paid, QuestionCheck.question).where(
            QuestionCheck.sample_id == sample_id, QuestionCheck.check == check
        )
    )
    return any(q == question and (v != "error" or (p > 0 and not retry_paid)) for v, p, q in rows)


def samples_to_check(
    store: Store,
    check: str,
    *,
    resume: bool,
    limit: int | None = None,
    split: str | None = None,
    dataset: str | None = None,
    retry_paid: bool = False,
) -> list[int]:
    """Checkable samples without a finished ``check`` of their current question.

    Without ``resume``, samples that already have ``check`` records raise :class:`CheckError`
    (a repeated command never pays twice); with it, finished ones are skipped, failed ones
    asked again unless their request was paid for (unless ``retry_paid``), and samples whose
    question changed since are checked again.
    """
    _check_name(check)

    def q(s: Session) -> tuple[list[int], int]:
        ids = checkable_sample_ids(s, split=split, dataset=dataset)
        started = s.scalar(
            select(func.count(QuestionCheck.id)).where(
                QuestionCheck.check == check,
                QuestionCheck.sample_id.in_(_checkable(split, dataset)),
            )
        )
        todo = [
            i
            for i in ids
            if not _done(s, i, check, s.get(Sample, i).question, retry_paid and resume)
        ]
        return todo, int(started or 0)

    todo, started = store.run(q, write=False)
    if started and not resume:
        raise CheckError(
            f"the store already has {started} {check} checks; pass --resume to continue them"
        )
    return todo[:limit] if limit is not None else todo


# -- parsing ------------------------------------------------------------------------------------


def parse_blind(text: str, categories: list[str]) -> str | None:
    """The category a blind answer names (``None`` for ``NA``); AnswerError for anything else.
    Case and surrounding blanks are forgiven; a name not in ``categories`` is not."""
    fields = json_object(text)
    if "category" not in fields:
        raise AnswerError("the blind answer has no 'category'")
    v = fields["category"]
    if v is not None and not isinstance(v, str):
        raise AnswerError(f"the blind answer's 'category' is a JSON {type(v).__name__}, not text")
    if is_na(v):
        return None
    by_key = {c.strip().casefold(): c for c in categories}
    name = by_key.get(v.strip().casefold())
    if name is None:
        raise AnswerError(f"the blind answer names {v[:80]!r}, not one of the listed categories")
    return name


def parse_unique(text: str, count: int) -> list[int]:
    """The box numbers (1…``count``) a uniqueness answer lists, sorted without repeats;
    AnswerError for a missing list, a non-integer or a number outside the boxes."""
    fields = json_object(text)
    boxes = fields.get("boxes")
    if not isinstance(boxes, list):
        raise AnswerError("the uniqueness answer has no 'boxes' list")
    out = set()
    for b in boxes:
        if isinstance(b, bool) or not isinstance(b, int | str):
            raise AnswerError(f"box {b!r} is not a box number")
        try:
            n = int(str(b).strip().lstrip("#"))
        except ValueError:
            raise AnswerError(f"box {str(b)[:40]!r} is not a box number") from None
        if not 1 <= n <= count:
            raise AnswerError(f"box {n} is not among the {count} numbered boxes")
        out.add(n)
    return sorted(out)


def blind_verdict(named: str | None, target_category: str) -> str:
    return "shortcut" if named == target_category else "needs_image"


def unique_verdict(boxes: list[int], target_number: int) -> str:
    if not boxes:
        return "none"
    if len(boxes) > 1:
        return "ambiguous"
    return "unique" if boxes[0] == target_number else "wrong"


# -- one sample ---------------------------------------------------------------------------------


def _now():
    from core.store.models import utcnow

    return utcnow()


def _ask(si: SampleInstances, check: str, client: ChatClient, rec: QuestionCheck) -> None:
    # OpenCV only here: ``stats`` reads the checks' rates without importing it
    from core.benchmark.render import draw_numbered_boxes
    from core.images import ImageError, load_image_rgb

    system, user = (load_prompt(n) for n in PROMPTS[check])
    rec.prompt_versions = {"system": system.tag, "user": user.tag}
    rec.endpoint, rec.model, rec.system = client.endpoint, client.model, system.text
    target = si.instances[si.target]
    cats = si.categories()
    if check == "blind":
        names = sorted(cats)
        rec.details = {"categories": dict(sorted(cats.items())), "target": target.category}
        if len(names) < 2:
            rec.verdict = "uninformative"
            return
        listing = "\n".join(f"- {c} ({cats[c]} instance{'s' * (cats[c] > 1)})" for c in names)
        rec.user_text = user.format(question=si.question, categories=listing)
        images = []
    else:
        boxes = [i.box_xyxy for i in si.instances]
        rec.details = {"boxes": boxes, "target": si.target + 1}
        rec.user_text = user.format(question=si.question, count=str(len(boxes)))
        try:
            images = [draw_numbered_boxes(load_image_rgb(si.image_path), boxes)]
        except ImageError as exc:
            rec.error = str(exc)
            return
    t0 = time.perf_counter()
    try:
        reply = client.chat(rec.system, rec.user_text, images)
    except EndpointError as exc:
        rec.error = str(exc)
        if exc.paid:
            rec.paid, rec.usage = 1, {"unusable": True, "seconds": time.perf_counter() - t0}
        return
    rec.raw, rec.paid = reply.text, 1
    rec.usage = {**reply.usage, "seconds": round(reply.seconds, 3)}
    try:
        if check == "blind":
            named = parse_blind(reply.text, sorted(cats))
            rec.details = {**rec.details, "named": named}
            rec.verdict = blind_verdict(named, target.category)
        else:
            picked = parse_unique(reply.text, len(si.instances))
            rec.details = {**rec.details, "picked": picked}
            rec.verdict = unique_verdict(picked, si.target + 1)
    except AnswerError as exc:
        rec.error = f"unusable reply: {exc}"


def check_one(
    store: Store,
    sample_id: int,
    check: str,
    client: ChatClient,
    *,
    holder: str | None = None,
) -> QuestionCheck:
    """Run ``check`` on one sample's current question and record it; returns the record.

    Request failures and unusable replies are recorded with verdict ``error`` (``paid`` 1 when
    the server answered); no reply stops the call before it is recorded."""
    _check_name(check)
    si = store.run(lambda s: sample_instances(s, sample_id), write=False)
    if si is None:
        raise CheckError(f"sample {sample_id} was not generated from an instance; nothing to check")
    rec = QuestionCheck(
        sample_id=sample_id,
        check=check,
        verdict="error",
        question=si.question,
        details={},
        prompt_versions={},
        endpoint="",
        model="",
        system="",
        user_text="",
        raw="",
        usage={},
        paid=0,
        created_at=_now(),
    )
    t0 = time.perf_counter()
    try:
        _ask(si, check, client, rec)
    except Exception as exc:  # noqa: BLE001 - a paid reply is recorded whatever it holds
        rec.verdict = "error"
        rec.error = f"unusable reply ({type(exc).__name__}: {str(exc)[:300]})"
    if rec.error:
        rec.verdict = "error"
    rec.seconds = time.perf_counter() - t0
    for name in ("question", "endpoint", "model", "system", "user_text", "raw", "error"):
        if (v := getattr(rec, name)) is not None:
            setattr(rec, name, storable_text(v))
    rec.details, rec.usage = json_safe(rec.details), json_safe(rec.usage)

    def record(s: Session) -> QuestionCheck:
        if holder is not None:
            claims.release(s, sample_id, check, holder, QuestionCheckClaim)
        s.add(rec)
        s.flush()
        s.expunge(rec)
        return rec

    return store.run(record)


# -- many samples -------------------------------------------------------------------------------


@dataclass
class CheckReport:
    verdicts: dict[str, Counter] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    tokens: Counter = field(default_factory=Counter)
    paid: int = 0
    seconds: float = 0.0
    claimed_elsewhere: int = 0

    def summary(self) -> str:
        lines = []
        for check, counts in self.verdicts.items():
            v = ", ".join(f"{k} {counts[k]}" for k in CHECK_VERDICTS[check] if counts.get(k))
            lines.append(f"{check}: {sum(counts.values())} samples: {v or 'none to check'}")
        lines.append(f"requests paid {self.paid}")
        if self.claimed_elsewhere:
            lines.append(f"left to another run (claimed there): {self.claimed_elsewhere}")
        if self.tokens:
            lines.append("tokens: " + ", ".join(f"{k} {n}" for k, n in sorted(self.tokens.items())))
        lines += [f"  error {name}: {terminal_text(msg, 300)}" for name, msg in self.errors]
        return "\n".join(lines)


def check_questions(
    store: Store,
    checks: tuple[str, ...] | list[str],
    client: ChatClient,
    *,
    resume: bool = False,
    limit: int | None = None,
    split: str | None = None,
    dataset: str | None = None,
    retry_paid: bool = False,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    claim_lease_s: float = claims.CLAIM_LEASE_S,
) -> CheckReport:
    """Run each of ``checks`` on every checkable sample not done yet (see
    :func:`samples_to_check`), one request at a time per sample, claiming each sample and check
    in the store first so that concurrent runs never pay twice."""
    from concurrent.futures import ThreadPoolExecutor

    todo = {
        c: samples_to_check(
            store,
            c,
            resume=resume,
            limit=limit,
            split=split,
            dataset=dataset,
            retry_paid=retry_paid,
        )
        for c in (_check_name(c) for c in checks)
    }
    last_id = store.run(lambda s: s.scalar(select(func.max(QuestionCheck.id))), write=False) or 0
    report = CheckReport(verdicts={c: Counter() for c in todo})
    jobs = [(c, sid) for c, ids in todo.items() for sid in ids]
    holder = claims.new_holder()
    lock = threading.Lock()
    done = 0
    t0 = time.perf_counter()

    def one(check: str, sid: int) -> None:
        nonlocal done
        if should_cancel and should_cancel():
            return

        def finished(s: Session, i: int) -> bool:
            newer = s.scalar(
                select(QuestionCheck.id).where(
                    QuestionCheck.sample_id == i,
                    QuestionCheck.check == check,
                    QuestionCheck.id > last_id,
                )
            )
            return newer is not None or _done(
                s, i, check, s.get(Sample, i).question, retry_paid and resume
            )

        claimed = claims.claim(
            store, sid, check, holder, claim_lease_s, finished, QuestionCheckClaim
        )
        rec = check_one(store, sid, check, client, holder=holder) if claimed else None
        with lock:
            done += 1
            if rec is None:
                report.claimed_elsewhere += 1
                if progress:
                    progress(done, len(jobs), "claimed elsewhere")
                return
            report.verdicts[check][rec.verdict] += 1
            report.paid += rec.paid
            report.tokens.update(
                {k: v for k, v in rec.usage.items() if k.endswith("_tokens") and isinstance(v, int)}
            )
            if rec.error:
                report.errors.append((f"sample {sid} {check}", rec.error))
            if progress:
                progress(done, len(jobs), f"{check}: {rec.verdict}")

    if progress:
        progress(0, len(jobs), "start")
    with (
        claims.renewing(store, holder, claim_lease_s, QuestionCheckClaim),
        ThreadPoolExecutor(max(1, client.concurrency), thread_name_prefix="checks") as pool,
    ):
        for f in [pool.submit(one, c, sid) for c, sid in jobs]:
            f.result()
    report.seconds = time.perf_counter() - t0
    return report


# -- what review and stats show -----------------------------------------------------------------


@dataclass(frozen=True)
class CheckView:
    """The latest ``check`` of a sample, as plain data for the question panel."""

    check: str
    verdict: str
    question: str
    current: bool  # checked the sample's current question
    details: dict[str, Any]
    model: str
    endpoint: str
    prompt_versions: dict[str, str]
    raw: str
    usage: dict[str, Any]
    error: str | None
    created_at: Any


def latest_checks(store: Store, sample_id: int) -> dict[str, CheckView]:
    """Each check's latest record for the sample (absent checks are left out)."""

    def q(s: Session) -> dict[str, CheckView]:
        smp = s.get(Sample, sample_id)
        out: dict[str, CheckView] = {}
        for r in s.scalars(
            select(QuestionCheck)
            .where(QuestionCheck.sample_id == sample_id)
            .order_by(QuestionCheck.id)
        ):
            out[r.check] = CheckView(
                r.check,
                r.verdict,
                r.question,
                smp is not None and smp.question == r.question,
                dict(r.details or {}),
                r.model,
                r.endpoint,
                dict(r.prompt_versions or {}),
                r.raw,
                dict(r.usage or {}),
                r.error,
                r.created_at,
            )
        return out

    return store.run(q, write=False)


def check_rates(store: Store) -> dict[str, dict[str, Counter]]:
    """``{split: {check: Counter(verdict)}}`` over each sample's latest record of each check
    (splits are the samples' categories); empty when nothing was checked."""

    def q(s: Session) -> dict[str, dict[str, Counter]]:
        latest = (
            select(func.max(QuestionCheck.id).label("id"))
            .group_by(QuestionCheck.sample_id, QuestionCheck.check)
            .subquery()
        )
        rows = s.execute(
            select(Sample.category, QuestionCheck.check, QuestionCheck.verdict)
            .join(latest, latest.c.id == QuestionCheck.id)
            .join(Sample, Sample.id == QuestionCheck.sample_id)
        )
        out: dict[str, dict[str, Counter]] = {}
        for split, check, verdict in rows:
            out.setdefault(split, {}).setdefault(check, Counter())[verdict] += 1
        return out

    return store.run(q, write=False)
