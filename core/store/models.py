"""The store's schema (SQLAlchemy 2 declarative). Changes go through Alembic migrations.

Masks are stored as COCO compressed RLE (JSON text); mask rows are immutable: editing a
mask adds a row and moves the sample's pointer, and a :class:`Revision` records before/after.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.vocab import CATEGORIES, STATUSES  # noqa: F401  (re-exported for the GUI)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("dataset_id", "path", name="uq_image_path"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)  # absolute path
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)


class _Rle:
    """A mask as COCO compressed RLE: its size, the ``counts`` string and the foreground area."""

    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    counts: Mapped[str] = mapped_column(Text)
    area: Mapped[int] = mapped_column(Integer, default=0)


class Mask(_Rle, Base):
    """One immutable binary mask as COCO compressed RLE."""

    __tablename__ = "masks"
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def rle(self) -> dict[str, Any]:
        return {"size": [self.height, self.width], "counts": self.counts}


class Sample(Base):
    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("dataset_id", "external_id", name="uq_sample_external"),
        Index("ix_samples_status_category", "status", "category"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(300))
    question: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    is_sentence: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    gt_mask_id: Mapped[int | None] = mapped_column(
        ForeignKey("masks.id", use_alter=True, name="fk_sample_gt_mask"), nullable=True
    )
    ignore_mask_id: Mapped[int | None] = mapped_column(
        ForeignKey("masks.id", use_alter=True, name="fk_sample_ignore_mask"), nullable=True
    )
    edited_mask_id: Mapped[int | None] = mapped_column(
        ForeignKey("masks.id", use_alter=True, name="fk_sample_edited_mask"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # the chain-of-thought reasoning that answers the question (evaluator training, §4.4 / App. D):
    # its text, its review status (pending / verified / rejected) and what wrote it
    reasoning: Mapped[str | None] = mapped_column(Text, nullable=True)
    reasoning_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reasoning_source: Mapped[str | None] = mapped_column(String(300), nullable=True)

    image: Mapped[Image] = relationship(lazy="joined")
    dataset: Mapped[Dataset] = relationship()


class Review(Base):
    """A reviewer's decision (accept → verified, reject, flag) with a note."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decision: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


class Revision(Base):
    """One change of one field of a sample, with who, when, before and after.

    ``action`` is ``edit`` for a user change, ``undo``/``redo`` for a revert or re-apply of the
    edit ``ref_id``. ``before``/``after`` are JSON values: question text, status string, or a
    mask id (``None`` for no mask).
    """

    __tablename__ = "revisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    user: Mapped[str] = mapped_column(String(100))
    field: Mapped[str] = mapped_column(String(32))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str] = mapped_column(String(8), default="edit")
    ref_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)


class _RunSampleKeys:
    """The key columns of a per-(run, sample) row: its id, run and sample (deleted with either)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)


class Run(Base):
    """A pipeline run: configuration and model identities."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    preset: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_ids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_random: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RunSample(_RunSampleKeys, Base):
    """The trace of one sample in one run: ``trace`` is the zlib-compressed JSON of
    :class:`PipelineTrace` without L, ``logits`` L itself (zlib-compressed float16 ``.npy``; read
    only when asked for, see :func:`core.trace.logits_from_bytes`)."""

    __tablename__ = "run_samples"
    __table_args__ = (UniqueConstraint("run_id", "sample_id", name="uq_run_sample"),)
    trace: Mapped[bytes] = mapped_column(LargeBinary)
    logits: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    top1_candidate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CandidateRow(_RunSampleKeys, Base):
    """One candidate of one run/sample, queryable without decoding the trace."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("run_id", "sample_id", "idx", name="uq_candidate"),)
    idx: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))
    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    counts: Mapped[str] = mapped_column(Text)
    sam_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    stability: Mapped[float | None] = mapped_column(Float, nullable=True)
    eval_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    true_iou: Mapped[float | None] = mapped_column(Float, nullable=True)


class EvaluatorOutput(_RunSampleKeys, Base):
    """The evaluator's text for one group (prompt, raw text, CoT, parsed scores)."""

    __tablename__ = "evaluator_outputs"
    __table_args__ = (UniqueConstraint("run_id", "sample_id", "group_index", name="uq_eval_group"),)
    group_index: Mapped[int] = mapped_column(Integer)
    candidate_ids: Mapped[list[int]] = mapped_column(JSON)
    prompt: Mapped[str] = mapped_column(Text, default="")
    raw_text: Mapped[str] = mapped_column(Text, default="")
    cot: Mapped[str | None] = mapped_column(Text, nullable=True)
    scores: Mapped[list[float | None]] = mapped_column(JSON)
    parse_error: Mapped[str | None] = mapped_column(Text, nullable=True)


# -- benchmark building (paper §3, App. C) ------------------------------------------------------


class _DatasetItem:
    """The columns of an imported instance-dataset item: its id, dataset, id in the dataset's own
    file (unique per dataset) and category name."""

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(300))
    category_name: Mapped[str] = mapped_column(String(200))


class InstanceGroup(_DatasetItem, Base):
    """Instances of one image that are shown together: every instance of one category (``kind``
    ``category``, the spatial split's "at least two instances of the same category"), or a
    gRefCOCO-style group with its expression (``kind`` ``group``, ``description``)."""

    __tablename__ = "instance_groups"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id", name="uq_group_external"),)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    image: Mapped[Image] = relationship(lazy="joined")


class Target(_DatasetItem, _Rle, Base):
    """One annotated instance inside one group: a target that has no question until one is
    generated. Its mask (COCO compressed RLE) becomes the sample's ground truth."""

    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id", name="uq_target_external"),)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("instance_groups.id", ondelete="CASCADE"), index=True
    )
    annotation_id: Mapped[str] = mapped_column(String(100))
    box_xyxy: Mapped[list[int]] = mapped_column(JSON)

    group: Mapped[InstanceGroup] = relationship(lazy="joined")

    @property
    def rle(self) -> dict[str, Any]:
        return {"size": [self.height, self.width], "counts": self.counts}


class QuestionGeneration(Base):
    """One generate → verify pass for one target and split, with its full provenance.

    ``verdict``: ``accepted`` / ``rejected`` by the verifier, ``skipped`` by the generator (it
    found no valid expression), ``error`` (request or parse failure; retried on resume), or
    ``fixed`` (a fixed question of §C, no model). ``sample_id`` is the sample the question
    became (none for ``skipped`` / ``error``). ``usage`` holds each call's token counts as the
    server reported them. ``paid`` counts the requests the server answered (billed), usable or
    not; an ``error`` with ``paid`` > 0 is not asked again on resume unless asked to.
    """

    __tablename__ = "question_generations"
    __table_args__ = (Index("ix_generation_target_split", "target_id", "split"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(32))
    sample_id: Mapped[int | None] = mapped_column(
        ForeignKey("samples.id", ondelete="SET NULL"), nullable=True, index=True
    )
    verdict: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(Text, default="")
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    prompt_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    endpoint: Mapped[str] = mapped_column(String(300), default="")
    generator_model: Mapped[str] = mapped_column(String(200), default="")
    generator_system: Mapped[str] = mapped_column(Text, default="")
    generator_user: Mapped[str] = mapped_column(Text, default="")
    generator_raw: Mapped[str] = mapped_column(Text, default="")
    generator_parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    verifier_model: Mapped[str] = mapped_column(String(200), default="")
    verifier_system: Mapped[str] = mapped_column(Text, default="")
    verifier_user: Mapped[str] = mapped_column(Text, default="")
    verifier_raw: Mapped[str] = mapped_column(Text, default="")
    verifier_parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    paid: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    target: Mapped[Target] = relationship(lazy="joined")


class GenerationClaim(Base):
    """A target one ``questions generate`` run is working on, so that no other run pays for it.

    ``holder`` names the run (host:pid:random); the claim lapses at ``expires_at`` (UTC) unless
    its run renews it, so a crashed run's targets become claimable again. The row is deleted in
    the transaction that records the target's generation.
    """

    __tablename__ = "generation_claims"
    __table_args__ = (UniqueConstraint("target_id", "split", name="uq_generation_claim"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str] = mapped_column(String(100), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


# -- evaluator training data (paper §4.4, App. D) ---------------------------------------------


class VqaItem(Base):
    """One imported VQA question with a short and a full answer (GQA layout, App. D) and the
    boxes of the objects its answer names (image pixels, xyxy), waiting for a mask and a
    reasoning text."""

    __tablename__ = "vqa_items"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id", name="uq_vqa_external"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(300))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(String(300))
    full_answer: Mapped[str] = mapped_column(Text, default="")
    boxes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    image: Mapped[Image] = relationship(lazy="joined")


class ReasoningAnnotation(Base):
    """One pass that writes (or refuses) a reasoning text for evaluator training, with its full
    provenance, like :class:`QuestionGeneration` for benchmark questions.

    ``builder``: ``gqa`` (S7 filter → SAM 3 → S8), ``spatial`` (S9), ``category`` (S10) or
    ``answer`` (a sample with a known answer). ``item_key`` names what was annotated
    (``vqa:<id>``, ``target:<id>``, ``group:<id>``, ``sample:<id>``; resume skips keys that are
    done). ``verdict``: ``accepted``, ``rejected`` (``stage`` says by what: ``filter``, ``sam3``,
    ``annotator``), ``skipped`` or ``error`` (retried on resume). ``calls``: each model call
    (role, model, system, user, raw, parsed, usage, seconds). ``details``: what else the step
    saw (e.g. SAM 3's mask count and box).
    """

    __tablename__ = "reasoning_annotations"
    __table_args__ = (Index("ix_reasoning_builder_item", "builder", "item_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    builder: Mapped[str] = mapped_column(String(16))
    item_key: Mapped[str] = mapped_column(String(100))
    sample_id: Mapped[int | None] = mapped_column(
        ForeignKey("samples.id", ondelete="SET NULL"), nullable=True, index=True
    )
    verdict: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(16), default="")
    reasons: Mapped[str] = mapped_column(Text, default="")
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    reasoning: Mapped[str | None] = mapped_column(Text, nullable=True)
    prompt_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    endpoint: Mapped[str] = mapped_column(String(300), default="")
    calls: Mapped[list[Any]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# -- question quality checks (not from the paper) ---------------------------------------------


class QuestionCheck(Base):
    """One quality check of one sample's question by a model, with its full provenance (checks
    not from the paper; see :mod:`core.benchmark.checks`).

    ``check``: ``blind`` (the question and the image's category list, no image: does the model
    name the target's category anyway?) or ``unique`` (the image with every instance boxed and
    numbered: does the question pick exactly the target?). ``question``: the text checked (a
    changed question is checked again on resume). ``verdict``: ``shortcut`` / ``needs_image`` /
    ``uninformative`` (blind), ``unique`` / ``ambiguous`` / ``wrong`` / ``none`` (unique), or
    ``error`` (retried on resume unless its request was ``paid``). ``details``: what was offered
    (categories or boxes, the target's place among them) and the parsed answer.
    """

    __tablename__ = "question_checks"
    __table_args__ = (Index("ix_question_check_sample_check", "sample_id", "check"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    check: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prompt_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    endpoint: Mapped[str] = mapped_column(String(300), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    system: Mapped[str] = mapped_column(Text, default="")
    user_text: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[str] = mapped_column(Text, default="")
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    paid: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class QuestionCheckClaim(Base):
    """A sample one ``questions check`` run is asking about for one check, so that no other run
    pays for it (as :class:`GenerationClaim` for targets)."""

    __tablename__ = "question_check_claims"
    __table_args__ = (UniqueConstraint("sample_id", "check", name="uq_question_check_claim"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    check: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(100), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
