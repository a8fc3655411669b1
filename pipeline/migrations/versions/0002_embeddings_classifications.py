"""Embedding cache (by text hash and encoder) and model classifications per passage.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column("text_hash", sa.String(32), primary_key=True),
        sa.Column("encoder", sa.String(80), primary_key=True),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "classifications",
        sa.Column("passage_id", sa.String(32), primary_key=True),
        sa.Column("model_version", sa.String(80), primary_key=True),
        sa.Column("doc_id", sa.String(200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_classifications_doc_id", "classifications", ["doc_id"])


def downgrade() -> None:
    op.drop_index("ix_classifications_doc_id", "classifications")
    op.drop_table("classifications")
    op.drop_table("embeddings")
