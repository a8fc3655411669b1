"""Review screen: user accounts, server-side sessions, double coding, adjudications, queue indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "web_sessions",
        # sha256 of the cookie value: a copy of the database does not give anyone a session.
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(120), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("absolute_expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_sessions_user_name", "web_sessions", ["user_name"])
    op.create_table(
        "double_coding",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("passage_id", sa.String(32), nullable=False),
        sa.Column("coder", sa.String(120), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),  # 1: first coder (counts until adjudicated), 2: second
        sa.Column("blind", sa.Boolean(), nullable=False),  # model labels hidden from the coders
        sa.Column("assigned_by", sa.String(120), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("passage_id", "coder", name="uq_double_coding_passage_coder"),
    )
    op.create_index("ix_double_coding_coder", "double_coding", ["coder"])
    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("passage_id", sa.String(32), nullable=False),
        sa.Column("review_id", sa.Integer(), sa.ForeignKey("reviews.id"), nullable=False),
        sa.Column("adjudicator", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_adjudications_passage_id", "adjudications", ["passage_id"])
    # Queue and review-screen look-ups.
    op.create_index("ix_reviews_reviewer_passage", "reviews", ["reviewer", "passage_id"])
    op.create_index("ix_passages_doc_seq", "passages", ["doc_id", "seq"])
    op.create_index("ix_classifications_version_created", "classifications", ["model_version", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_classifications_version_created", "classifications")
    op.drop_index("ix_passages_doc_seq", "passages")
    op.drop_index("ix_reviews_reviewer_passage", "reviews")
    op.drop_index("ix_adjudications_passage_id", "adjudications")
    op.drop_table("adjudications")
    op.drop_index("ix_double_coding_coder", "double_coding")
    op.drop_table("double_coding")
    op.drop_index("ix_web_sessions_user_name", "web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("users")
