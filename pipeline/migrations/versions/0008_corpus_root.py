"""Documents remember the corpus folder they were read from (absolute), their source path is relative to it.

Revision ID: 0008_corpus_root
Revises: 0007_audit
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_corpus_root"
down_revision = "0007_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for documents stored before: their source stays as it was (relative to where mgz ran).
    op.add_column("documents", sa.Column("corpus_root", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "corpus_root")
