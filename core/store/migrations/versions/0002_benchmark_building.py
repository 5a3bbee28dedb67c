"""benchmark building: instance groups, targets, question generations

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 19:30:00

Adds tables only; the tables of 0001 keep their columns and meaning.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "external_id", name="uq_group_external"),
    )
    op.create_index("ix_instance_groups_image_id", "instance_groups", ["image_id"])
    op.create_table(
        "targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("annotation_id", sa.String(length=100), nullable=False),
        sa.Column("category_name", sa.String(length=200), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("area", sa.Integer(), nullable=False),
        sa.Column("box_xyxy", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["group_id"], ["instance_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "external_id", name="uq_target_external"),
    )
    op.create_index("ix_targets_group_id", "targets", ["group_id"])
    op.create_table(
        "question_generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=32), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("prompt_versions", sa.JSON(), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=False),
        sa.Column("generator_model", sa.String(length=200), nullable=False),
        sa.Column("generator_system", sa.Text(), nullable=False),
        sa.Column("generator_user", sa.Text(), nullable=False),
        sa.Column("generator_raw", sa.Text(), nullable=False),
        sa.Column("generator_parsed", sa.JSON(), nullable=True),
        sa.Column("verifier_model", sa.String(length=200), nullable=False),
        sa.Column("verifier_system", sa.Text(), nullable=False),
        sa.Column("verifier_user", sa.Text(), nullable=False),
        sa.Column("verifier_raw", sa.Text(), nullable=False),
        sa.Column("verifier_parsed", sa.JSON(), nullable=True),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_generation_target_split", "question_generations", ["target_id", "split"])
    op.create_index("ix_question_generations_sample_id", "question_generations", ["sample_id"])


def downgrade() -> None:
    op.drop_index("ix_question_generations_sample_id", table_name="question_generations")
    op.drop_index("ix_generation_target_split", table_name="question_generations")
    op.drop_table("question_generations")
    op.drop_index("ix_targets_group_id", table_name="targets")
    op.drop_table("targets")
    op.drop_index("ix_instance_groups_image_id", table_name="instance_groups")
    op.drop_table("instance_groups")
