"""question quality checks (blind answerability, uniqueness) and their claims

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 19:20:00

Adds the tables ``question_checks`` (one row per check of one sample's question, with the
model's answer and its provenance) and ``question_check_claims`` (one row per sample and check
a ``questions check`` run is asking about; unique, so two runs never both pay).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "question_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("check", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prompt_versions", sa.JSON(), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("user_text", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("paid", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_question_check_sample_check", "question_checks", ["sample_id", "check"])
    op.create_table(
        "question_check_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("check", sa.String(length=16), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sample_id", "check", name="uq_question_check_claim"),
    )
    op.create_index("ix_question_check_claims_holder", "question_check_claims", ["holder"])


def downgrade() -> None:
    op.drop_index("ix_question_check_claims_holder", table_name="question_check_claims")
    op.drop_table("question_check_claims")
    op.drop_index("ix_question_check_sample_check", table_name="question_checks")
    op.drop_table("question_checks")
