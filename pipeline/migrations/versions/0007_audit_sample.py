"""Audit sample: random draws of content passages per document, with their design.

Revision ID: 0007_audit
Revises: 0006_ocr_transcripts
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_audit"
down_revision = "0006_ocr_transcripts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_draws",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(20), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("doc_filter", sa.String(200), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("drawn_by", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_table(
        "audit_members",
        sa.Column("passage_id", sa.String(32), primary_key=True),
        sa.Column("draw_id", sa.Integer(), sa.ForeignKey("audit_draws.id"), nullable=False),
        sa.Column("doc_id", sa.String(200), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
    )
    op.create_index("ix_audit_members_draw_id", "audit_members", ["draw_id"])
    op.create_index("ix_audit_members_doc_id", "audit_members", ["doc_id"])


def downgrade() -> None:
    op.drop_table("audit_members")
    op.drop_table("audit_draws")
