"""Chunk locations: where a passage is, in the words of its document's kind

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:00:00

`document_chunks.location` (JSONB, NULL for chunks stored before it) holds the typed
location of a passage beyond page and row numbers: a Word heading path and paragraph
index, a slide number, a sheet name with its row range, an HTML heading path, and
whether the text was read by OCR (workers/pipeline/locations.py). Adding a nullable
column without a default rewrites nothing; the partitions inherit it.

Document kinds are stored as VARCHAR(32) without a check constraint (0001), so the new
kinds (DOCX, PPTX, XLSX, HTML, IMAGE) need no change to the column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("document_chunks", sa.Column("location", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("document_chunks", "location")
