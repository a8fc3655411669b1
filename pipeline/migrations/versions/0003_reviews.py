"""Append-only history of analyst review decisions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("passage_id", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(120), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("labels_shown", sa.JSON(), nullable=True),
        sa.Column("model_version", sa.String(80), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reviews_passage_id", "reviews", ["passage_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_passage_id", "reviews")
    op.drop_table("reviews")
