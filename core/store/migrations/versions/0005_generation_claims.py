"""question generation: claims on targets, and the paid requests of each generation

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 18:40:00

Adds ``question_generations.paid`` (requests the server answered; existing rows 0, so their
errors are retried on resume as before) and the table ``generation_claims`` (one row per target
and split a ``questions generate`` run is working on; unique, so two runs never both pay).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE (no table copy): other tables reference question_generations' targets
    op.add_column(
        "question_generations",
        sa.Column("paid", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "generation_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target_id", "split", name="uq_generation_claim"),
    )
    op.create_index("ix_generation_claims_holder", "generation_claims", ["holder"])


def downgrade() -> None:
    op.drop_index("ix_generation_claims_holder", table_name="generation_claims")
    op.drop_table("generation_claims")
    op.drop_column("question_generations", "paid")  # SQLite ≥ 3.35: ALTER TABLE … DROP COLUMN
