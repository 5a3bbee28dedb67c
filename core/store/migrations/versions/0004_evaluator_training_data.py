"""evaluator training data: reasoning on samples, VQA items, reasoning annotations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 16:00:00

Adds three nullable columns to ``samples`` (``reasoning``, ``reasoning_status``,
``reasoning_source``) and two tables (``vqa_items``, ``reasoning_annotations``); existing rows
keep their values (no reasoning).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE (no table copy): other tables reference samples with foreign keys on
    op.add_column("samples", sa.Column("reasoning", sa.Text(), nullable=True))
    op.add_column("samples", sa.Column("reasoning_status", sa.String(length=16), nullable=True))
    op.add_column("samples", sa.Column("reasoning_source", sa.String(length=300), nullable=True))
    op.create_table(
        "vqa_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.String(length=300), nullable=False),
        sa.Column("full_answer", sa.Text(), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "external_id", name="uq_vqa_external"),
    )
    op.create_index("ix_vqa_items_image_id", "vqa_items", ["image_id"])
    op.create_table(
        "reasoning_annotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("builder", sa.String(length=16), nullable=False),
        sa.Column("item_key", sa.String(length=100), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("prompt_versions", sa.JSON(), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=False),
        sa.Column("calls", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reasoning_builder_item", "reasoning_annotations", ["builder", "item_key"])
    op.create_index("ix_reasoning_annotations_sample_id", "reasoning_annotations", ["sample_id"])


def downgrade() -> None:
    op.drop_index("ix_reasoning_annotations_sample_id", table_name="reasoning_annotations")
    op.drop_index("ix_reasoning_builder_item", table_name="reasoning_annotations")
    op.drop_table("reasoning_annotations")
    op.drop_index("ix_vqa_items_image_id", table_name="vqa_items")
    op.drop_table("vqa_items")
    for name in ("reasoning_source", "reasoning_status", "reasoning"):
        op.drop_column("samples", name)  # SQLite ≥ 3.35: ALTER TABLE … DROP COLUMN
