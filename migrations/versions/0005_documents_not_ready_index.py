"""Partial index of the documents that are not READY (retrieval's anti-join)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00

Retrieval must skip chunks whose document is not READY (a document being re-indexed
keeps its old chunks until the new ones are swapped in). Joining every candidate chunk
to `documents` cost a scan or one index probe per candidate; an anti-join against this
partial index — empty or nearly so — costs almost nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_documents_not_ready ON documents (id) WHERE status <> 'READY'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_documents_not_ready")
