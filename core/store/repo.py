"""Repository functions: each takes an open :class:`~sqlalchemy.orm.Session` first.

Callers own the transaction (``with store.session() as s:``), one per user action.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.masks import as_bool_mask, decode_rle, encode_rle, mask_iou
from core.store.models import (
    CATEGORIES,
    STATUSES,
    CandidateRow,
    Dataset,
    EvaluatorOutput,
    Image,
    Mask,
    Run,
    RunSample,
    Sample,
)
from core.trace import PipelineTrace, logits_from_bytes, logits_to_bytes, question_is_stale


class NotFoundError(LookupError):
    """A sample, run or trace id that is not in the store."""


_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1  # SQL BIGINT; ids outside cannot be in any table


def _valid_id(value: object) -> bool:
    """True if ``value`` is an int the database can compare (outside: "not found", never an overflow)."""
    return isinstance(value, int) and not isinstance(value, bool) and _ID_MIN <= value <= _ID_MAX


def like_literal(text: str) -> str:
    """``%text%`` for ``LIKE … ESCAPE '\\'`` with ``%``, ``_`` and ``\\`` in ``text`` matching themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def get_or_create_dataset(s: Session, name: str) -> Dataset:
    ds = s.scalar(select(Dataset).where(Dataset.name == name))
    if ds is None:
        ds = Dataset(name=name)
        s.add(ds)
        s.flush()
    return ds


def get_or_create_image(
    s: Session, dataset: Dataset, path: Path, sha256: str, hw: tuple[int, int]
) -> Image:
    p = str(Path(path).resolve())
    img = s.scalar(select(Image).where(Image.dataset_id == dataset.id, Image.path == p))
    if img is None:
        img = Image(dataset_id=dataset.id, path=p, sha256=sha256, height=hw[0], width=hw[1])
        s.add(img)
        s.flush()
    return img


def add_mask(
    s: Session,
    sample: Sample,
    mask: np.ndarray | dict[str, Any],
    kind: str,
    provenance: dict[str, Any] | None = None,
) -> Mask:
    """Store a bool (H, W) mask (or an RLE dict) for ``sample``; checks it matches the image size."""
    row = new_mask(sample.id, (sample.image.height, sample.image.width), mask, kind, provenance)
    s.add(row)
    s.flush()
    return row


def new_mask(
    sample_id: int,
    hw: tuple[int, int],
    mask: np.ndarray | dict[str, Any],
    kind: str,
    provenance: dict[str, Any] | None = None,
    *,
    checked: bool = False,
) -> Mask:
    """A :class:`Mask` row (not yet added) for a bool (H, W) mask or an RLE dict of size ``hw``,
    stored in canonical COCO RLE with its area. ``checked``: the RLE already passed
    :func:`core.masks.check_rle` (its run lengths are not checked again; the size still is)."""
    if isinstance(mask, dict):
        arr = decode_rle(mask, hw, validate=not checked)  # validates
    else:
        arr = as_bool_mask(mask, hw)
    rle = encode_rle(arr)
    return Mask(
        sample_id=sample_id,
        kind=kind,
        height=hw[0],
        width=hw[1],
        counts=rle["counts"],
        area=int(arr.sum()),
        provenance=provenance,
    )


def get_mask(s: Session, mask_id: int | None) -> np.ndarray | None:
    if mask_id is None:
        return None
    row = s.get(Mask, mask_id) if _valid_id(mask_id) else None
    if row is None:
        raise NotFoundError(f"mask {mask_id} not found")
    return decode_rle(row.rle)


def _filtered_samples(
    q,
    *,
    status: str | None = None,
    category: str | None = None,
    text: str | None = None,
    dataset: str | None = None,
):
    """``q`` (a select over ``Sample``) narrowed by the sample filters of :func:`list_samples`."""
    if status:
        q = q.where(Sample.status == status)
    if category:
        q = q.where(Sample.category == category)
    if text:
        like = like_literal(text)
        q = q.where(
            or_(
                Sample.question.ilike(like, escape="\\"),
                Sample.external_id.ilike(like, escape="\\"),
            )
        )
    if dataset:
        q = q.join(Dataset, Sample.dataset_id == Dataset.id).where(Dataset.name == dataset)
    return q


def list_samples(
    s: Session,
    *,
    status: str | None = None,
    category: str | None = None,
    text: str | None = None,
    dataset: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Sample]:
    """Samples ordered by id, optionally filtered (``text`` matches question or external id)."""
    q = _filtered_samples(
        select(Sample).order_by(Sample.id),
        status=status,
        category=category,
        text=text,
        dataset=dataset,
    )
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q))


def count_samples(
    s: Session,
    *,
    status: str | None = None,
    category: str | None = None,
    text: str | None = None,
    dataset: str | None = None,
) -> int:
    """How many samples :func:`list_samples` returns for the same filters (without loading them)."""
    q = _filtered_samples(
        select(func.count()).select_from(Sample),
        status=status,
        category=category,
        text=text,
        dataset=dataset,
    )
    return int(s.scalar(q) or 0)


def get_sample(s: Session, sample_id: int, *, for_update: bool = False) -> Sample:
    if not _valid_id(sample_id):
        raise NotFoundError(f"sample {sample_id} not found")
    q = select(Sample).where(Sample.id == sample_id)
    if for_update:
        q = q.with_for_update(of=Sample)
    row = s.scalar(q)
    if row is None:
        raise NotFoundError(f"sample {sample_id} not found")
    return row


def find_sample(s: Session, ref: str | int) -> Sample:
    """The sample a user names: its numeric id, or its own id (``external_id``, the SGDR ``id``
    users see in exports); ``#12`` always means numeric id 12. A reference that matches more than
    one sample (the same external id in two datasets, or a number that is both one sample's id
    and another's external id) is a ``LookupError`` listing the matches."""
    text = str(ref).strip()
    if text.startswith("#") and text[1:].isdigit():
        return get_sample(s, int(text[1:]))
    matches = {x.id: x for x in s.scalars(select(Sample).where(Sample.external_id == text))}
    if text.isdigit() and _valid_id(int(text)) and (by_id := s.get(Sample, int(text))) is not None:
        matches[by_id.id] = by_id
    if not matches:
        raise NotFoundError(f"sample {text!r} not found (neither a sample id nor an SGDR id)")
    if len(matches) > 1:
        names = ", ".join(
            f"#{x.id} ({x.dataset.name if x.dataset else '?'} / {x.external_id})"
            for x in sorted(matches.values(), key=lambda x: x.id)
        )
        raise LookupError(f"sample {text!r} is ambiguous: {names}; name one as #<id>")
    return next(iter(matches.values()))


def image_path(sample: Sample) -> Path:
    return Path(sample.image.path)


def gt_mask(s: Session, sample_id: int) -> np.ndarray | None:
    return get_mask(s, get_sample(s, sample_id).gt_mask_id)


def ignore_mask(s: Session, sample_id: int) -> np.ndarray | None:
    return get_mask(s, get_sample(s, sample_id).ignore_mask_id)


def edited_mask(s: Session, sample_id: int) -> np.ndarray | None:
    return get_mask(s, get_sample(s, sample_id).edited_mask_id)


def current_mask(s: Session, sample_id: int) -> np.ndarray | None:
    """The sample's answer mask: the edited mask if there is one, else the ground truth."""
    sample = get_sample(s, sample_id)
    return get_mask(
        s, sample.edited_mask_id if sample.edited_mask_id is not None else sample.gt_mask_id
    )


ReferenceKind = Literal["gt", "reviewed"]
REFERENCE_KINDS: tuple[ReferenceKind, ...] = ("gt", "reviewed")


@dataclass(frozen=True)
class ReferenceMask:
    """The mask a prediction is measured against, and which one it is.

    ``used`` is ``"gt"`` (the imported ground truth), ``"reviewed"`` (a reviewer's edited
    mask) or ``"none"`` (the sample has neither; ``mask`` is then ``None``). ``mask`` is bool
    (H, W) at the image's size.
    """

    mask: np.ndarray | None
    used: Literal["gt", "reviewed", "none"]


def reference_mask(s: Session, sample_id: int, against: ReferenceKind) -> ReferenceMask:
    """The reference of ``sample_id`` for metrics.

    ``against="gt"``: the imported ground truth, always (edits never replace it: they are stored
    as the sample's separate edited mask). ``against="reviewed"``: the reviewer's edited mask;
    a sample nobody edited falls back to its imported ground truth (the reviewer kept it as
    it is), and ``used`` says ``"gt"`` so callers can report how many samples fell back.
    """
    if against not in REFERENCE_KINDS:
        raise ValueError(f"unknown reference {against!r}; use one of {list(REFERENCE_KINDS)}")
    sample = get_sample(s, sample_id)
    if against == "reviewed" and sample.edited_mask_id is not None:
        return ReferenceMask(get_mask(s, sample.edited_mask_id), "reviewed")
    if sample.gt_mask_id is not None:
        return ReferenceMask(get_mask(s, sample.gt_mask_id), "gt")
    return ReferenceMask(None, "none")


def counts(s: Session) -> dict[tuple[str, str], int]:
    """{(category, status): n} over all samples (zeros included for known values)."""
    out = {(c, st): 0 for c in CATEGORIES for st in STATUSES}
    for cat, st, n in s.execute(
        select(Sample.category, Sample.status, func.count()).group_by(
            Sample.category, Sample.status
        )
    ):
        out[(cat, st)] = int(n)
    return out


# -- runs and traces ------------------------------------------------------------------------


def create_run(
    s: Session,
    *,
    name: str,
    preset: str,
    config: dict[str, Any],
    model_ids: dict[str, Any],
    is_random: bool,
) -> int:
    run = Run(name=name, preset=preset, config=config, model_ids=model_ids, is_random=is_random)
    s.add(run)
    s.flush()
    return run.id


def get_run(s: Session, run_id: int) -> Run:
    run = s.get(Run, run_id) if _valid_id(run_id) else None
    if run is None:
        raise NotFoundError(f"run {run_id} not found")
    return run


def list_runs(s: Session) -> list[Run]:
    return list(s.scalars(select(Run).order_by(Run.id)))


def latest_run(s: Session, preset: str | None = None) -> Run | None:
    q = select(Run).order_by(Run.id.desc()).limit(1)
    if preset:
        q = q.where(Run.preset == preset)
    return s.scalar(q)


def save_trace(s: Session, run_id: int, sample_id: int, trace: PipelineTrace) -> None:
    """Upsert the trace of ``sample_id`` in ``run_id`` with its candidate and evaluator rows."""
    get_run(s, run_id)
    sample = get_sample(s, sample_id)
    hw = (sample.image.height, sample.image.width)
    if tuple(trace.image_hw) != hw:
        raise ValueError(f"trace image size {trace.image_hw} != sample {sample_id} image size {hw}")
    trace.sample_id = sample_id
    for model in (RunSample, CandidateRow, EvaluatorOutput):
        for row in s.scalars(
            select(model).where(model.run_id == run_id, model.sample_id == sample_id)
        ):
            s.delete(row)
    s.flush()
    gt = get_mask(s, sample.gt_mask_id)
    ev = trace.evaluator
    ranks = {cid: i + 1 for i, cid in enumerate(ev.ranking)} if ev else {}
    for c in trace.candidates:
        rle = encode_rle(c.mask)
        s.add(
            CandidateRow(
                run_id=run_id,
                sample_id=sample_id,
                idx=c.id,
                origin=c.origin,
                height=hw[0],
                width=hw[1],
                counts=rle["counts"],
                sam_score=c.sam_score,
                stability=c.stability,
                eval_score=ev.final_scores.get(c.id) if ev else None,
                rank=ranks.get(c.id),
                true_iou=None if gt is None else mask_iou(c.mask, gt),
            )
        )
    if ev:
        for g in ev.groups:
            s.add(
                EvaluatorOutput(
                    run_id=run_id,
                    sample_id=sample_id,
                    group_index=g.index,
                    candidate_ids=list(g.candidate_ids),
                    prompt=g.prompt,
                    raw_text=g.raw_text,
                    cot=g.cot,
                    scores=list(g.scores),
                    parse_error=g.parse_error,
                )
            )
    s.add(
        RunSample(
            run_id=run_id,
            sample_id=sample_id,
            trace=zlib.compress(trace.to_json(with_logits=False).encode("utf-8"), 6),
            logits=None if trace.initial_logits is None else logits_to_bytes(trace.initial_logits),
            top1_candidate=ev.ranking[0] if ev and ev.ranking else None,
            seconds=float(sum(trace.timings.values())) if trace.timings else 0.0,
        )
    )
    s.flush()


def _run_sample_value(s: Session, column, run_id: int, sample_id: int) -> Any:
    """One column of the run/sample row (``None`` without such a row)."""
    if not (_valid_id(run_id) and _valid_id(sample_id)):
        return None
    return s.scalar(
        select(column).where(RunSample.run_id == run_id, RunSample.sample_id == sample_id)
    )


def load_trace(
    s: Session, run_id: int, sample_id: int, *, with_logits: bool = True
) -> PipelineTrace | None:
    """The saved trace, or ``None``; ``with_logits=False`` leaves the float L map out (viewers):
    L is stored in its own column, so it is then neither read nor decoded."""
    blob = _run_sample_value(s, RunSample.trace, run_id, sample_id)
    if blob is None:
        return None
    trace = PipelineTrace.from_json(zlib.decompress(blob).decode("utf-8"), with_logits=with_logits)
    if with_logits and trace.initial_logits is None:
        trace.initial_logits = load_logits(s, run_id, sample_id)
    return trace


def load_logits(s: Session, run_id: int, sample_id: int) -> np.ndarray | None:
    """L (float32 (H, W)) of a saved trace alone, or ``None`` when there is none."""
    stored = _run_sample_value(s, RunSample.logits, run_id, sample_id)
    return None if stored is None else logits_from_bytes(stored)


def trace_question(s: Session, run_id: int, sample_id: int) -> str | None:
    """The question the saved trace of ``sample_id`` in ``run_id`` was computed on (``None``
    without a trace); reads only that field's text, not the masks."""
    blob = _run_sample_value(s, RunSample.trace, run_id, sample_id)
    if blob is None:
        return None
    return json.loads(zlib.decompress(blob).decode("utf-8")).get("question")


def trace_is_stale(s: Session, run_id: int, sample_id: int) -> bool:
    """True when the sample's question was edited after ``run_id`` traced it: the question the
    trace holds differs from the sample's current question. ``False`` without a trace."""
    return question_is_stale(
        trace_question(s, run_id, sample_id), get_sample(s, sample_id).question
    )


def finished_sample_ids(s: Session, run_id: int) -> set[int]:
    if not _valid_id(run_id):
        return set()
    return set(s.scalars(select(RunSample.sample_id).where(RunSample.run_id == run_id)))


def runs_for_sample(s: Session, sample_id: int) -> list[Run]:
    if not _valid_id(sample_id):
        return []
    q = (
        select(Run)
        .join(RunSample, RunSample.run_id == Run.id)
        .where(RunSample.sample_id == sample_id)
        .order_by(Run.id)
    )
    return list(s.scalars(q))
