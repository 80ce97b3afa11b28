"""Answers say how well the documents supported them and whether they were cut off; clean titles

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00

`chat_messages.evidence` (STRONG | WEAK | NONE, NULL for questions and older answers) is
the retrieval side's verdict on the passages an answer was given (gql_server/llm/extractive.py
`assess`); the built-in answerer abstains on WEAK and NONE. `chat_messages.truncated` is
true when the model stopped at its output token limit.

Documents whose title is still the one derived from the file name at upload (the stem
with `_` replaced) get the cleaner default (`-` and `__` turned into single spaces too,
gql_server/rag/citations.title_from_filename); titles someone chose are left alone. The
downgrade keeps the new titles: they are valid titles either way.
"""

import re
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _old_default(filename: str) -> str:
    stem = Path(filename).stem.replace("_", " ").strip()
    return (stem or filename)[:500]


def _new_default(filename: str) -> str:
    # A copy of citations.title_from_filename as of this revision: migrations must not
    # change when the application code does.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or " " in extension or len(extension) > 5:
        stem = name
    cleaned = " ".join(re.sub(r"[_\-]+", " ", stem).split())
    return (cleaned or " ".join(name.split()) or "Untitled")[:500]


def upgrade() -> None:
    op.add_column(
        "chat_messages",
        sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.add_column("chat_messages", sa.Column("evidence", sa.String(length=8), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, filename, title FROM documents")).all()
    for row in rows:
        if row.title == _old_default(row.filename) and _new_default(row.filename) != row.title:
            connection.execute(
                sa.text("UPDATE documents SET title = :title WHERE id = :id"),
                {"title": _new_default(row.filename), "id": row.id},
            )


def downgrade() -> None:
    op.drop_column("chat_messages", "evidence")
    op.drop_column("chat_messages", "truncated")
