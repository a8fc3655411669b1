"""Scanned PDFs and transcripts: passages remember OCR and a turn's time span; OCR cache by sha256.

Revision ID: 0006_ocr_transcripts
Revises: 0005_carry
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_ocr_transcripts"
down_revision = "0005_carry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("passages") as batch:
        batch.add_column(sa.Column("ocr", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("time_start", sa.Float(), nullable=True))
        batch.add_column(sa.Column("time_end", sa.Float(), nullable=True))
    op.create_table(
        "ocr_cache",
        sa.Column("sha256", sa.String(64), primary_key=True),
        # Tesseract version, language and settings: another engine OCRs again.
        sa.Column("engine", sa.String(80), primary_key=True),
        sa.Column("pages", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ocr_cache")
    with op.batch_alter_table("passages") as batch:
        batch.drop_column("time_end")
        batch.drop_column("time_start")
        batch.drop_column("ocr")
