"""Decisions follow their passages across re-ingest: carry-over record and copied reviews marked.

Revision ID: 0005_carry
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_carry"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passage_carry",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("doc_id", sa.String(200), nullable=False),
        # The passage the decisions were made on, and the passage of the new extraction they went to
        # (None: its text is gone from the document).
        sa.Column("old_passage_id", sa.String(32), nullable=False),
        sa.Column("new_passage_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),  # exact | aligned | relook | removed
        sa.Column("old_text", sa.Text(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_passage_carry_new", "passage_carry", ["new_passage_id"])
    op.create_index("ix_passage_carry_doc", "passage_carry", ["doc_id"])
    # A review copied onto a new passage names the review it copies (history stays append-only).
    op.add_column("reviews", sa.Column("carried_from", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("reviews", "carried_from")
    op.drop_index("ix_passage_carry_doc", "passage_carry")
    op.drop_index("ix_passage_carry_new", "passage_carry")
    op.drop_table("passage_carry")
