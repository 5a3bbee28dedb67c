"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 11:14:23.974487
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# samples and masks point at each other: SQLite accepts the forward reference inline (and
# cannot ALTER in constraints); other databases get these after both tables exist.
_MASK_FKS = (
    ("fk_sample_edited_mask", "edited_mask_id"),
    ("fk_sample_gt_mask", "gt_mask_id"),
    ("fk_sample_ignore_mask", "ignore_mask_id"),
)


def _inline_mask_fks() -> tuple[sa.ForeignKeyConstraint, ...]:
    if op.get_bind().dialect.name != "sqlite":
        return ()
    return tuple(sa.ForeignKeyConstraint([col], ["masks.id"], name=name) for name, col in _MASK_FKS)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("preset", sa.String(length=100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("model_ids", sa.JSON(), nullable=False),
        sa.Column("is_random", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "path", name="uq_image_path"),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_images_sha256"), ["sha256"], unique=False)

    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_sentence", sa.Boolean(), nullable=True),
        sa.Column("gt_mask_id", sa.Integer(), nullable=True),
        sa.Column("ignore_mask_id", sa.Integer(), nullable=True),
        sa.Column("edited_mask_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        *_inline_mask_fks(),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "external_id", name="uq_sample_external"),
    )
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_samples_image_id"), ["image_id"], unique=False)
        batch_op.create_index("ix_samples_status_category", ["status", "category"], unique=False)

    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("sam_score", sa.Float(), nullable=True),
        sa.Column("stability", sa.Float(), nullable=True),
        sa.Column("eval_score", sa.Float(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("true_iou", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "sample_id", "idx", name="uq_candidate"),
    )
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_candidates_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_candidates_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "evaluator_outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("group_index", sa.Integer(), nullable=False),
        sa.Column("candidate_ids", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=False),
        sa.Column("cot", sa.Text(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "sample_id", "group_index", name="uq_eval_group"),
    )
    with op.batch_alter_table("evaluator_outputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluator_outputs_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_evaluator_outputs_sample_id"), ["sample_id"], unique=False
        )

    op.create_table(
        "masks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("area", sa.Integer(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("masks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_masks_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user", sa.String(length=100), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=True),
        sa.Column("undone", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revisions_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "run_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("trace", sa.LargeBinary(), nullable=False),
        sa.Column("top1_candidate", sa.Integer(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "sample_id", name="uq_run_sample"),
    )
    with op.batch_alter_table("run_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_samples_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_samples_sample_id"), ["sample_id"], unique=False)
    if op.get_bind().dialect.name != "sqlite":
        for name, col in _MASK_FKS:
            op.create_foreign_key(name, "samples", "masks", [col], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for name, _col in _MASK_FKS:
            op.drop_constraint(name, "samples", type_="foreignkey")
    with op.batch_alter_table("run_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_samples_sample_id"))
        batch_op.drop_index(batch_op.f("ix_run_samples_run_id"))

    op.drop_table("run_samples")
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revisions_sample_id"))

    op.drop_table("revisions")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_sample_id"))

    op.drop_table("reviews")
    with op.batch_alter_table("masks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_masks_sample_id"))

    op.drop_table("masks")
    with op.batch_alter_table("evaluator_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluator_outputs_sample_id"))
        batch_op.drop_index(batch_op.f("ix_evaluator_outputs_run_id"))

    op.drop_table("evaluator_outputs")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_candidates_sample_id"))
        batch_op.drop_index(batch_op.f("ix_candidates_run_id"))

    op.drop_table("candidates")
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index("ix_samples_status_category")
        batch_op.drop_index(batch_op.f("ix_samples_image_id"))

    op.drop_table("samples")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_sha256"))

    op.drop_table("images")
    op.drop_table("runs")
    op.drop_table("datasets")
