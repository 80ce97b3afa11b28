"""Chunk search text: the passage without its page furniture, indexed instead of the text

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00

`document_chunks.search_text` holds a PDF passage without its running headers, footers and
repeated table headings (workers/pipeline/furniture.py), or NULL when it had none. The
pipeline embeds it instead of the text, and the lexical columns index
`context + search_text` (else `context + text`), so a title printed on dozens of pages no
longer makes them look alike to BM25; `text` stays the passage as the page shows it.

As in 0003, changing the generated expressions rewrites the table (each partition) without
firing the statistics triggers, so the BM25 statistics are rebuilt from the rewritten rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXED_TEXT = "coalesce(context || E'\\n\\n', '') || coalesce(search_text, text)"
OLD_INDEXED_TEXT = "coalesce(context || E'\\n\\n', '') || text"


def _set_expressions(indexed_text: str) -> None:
    op.execute(
        "ALTER TABLE document_chunks "
        f"ALTER COLUMN search_vector SET EXPRESSION AS (to_tsvector('english'::regconfig, {indexed_text})), "
        "ALTER COLUMN term_count SET EXPRESSION AS "
        f"(tsvector_token_count(to_tsvector('english'::regconfig, {indexed_text})))"
    )
    op.execute("DELETE FROM bm25_term_stats")
    op.execute("DELETE FROM bm25_corpus_stats")
    op.execute(
        """
        INSERT INTO bm25_corpus_stats (scope_id, model_id, chunk_count, total_terms)
        SELECT coalesce(session_id, model_id), model_id, count(*), sum(term_count)
        FROM document_chunks GROUP BY 1, 2
        """
    )
    op.execute(
        """
        INSERT INTO bm25_term_stats (scope_id, lexeme, doc_freq)
        SELECT coalesce(c.session_id, c.model_id), entry.lexeme, count(*)
        FROM document_chunks c CROSS JOIN LATERAL unnest(c.search_vector) AS entry
        GROUP BY 1, 2
        """
    )


def upgrade() -> None:
    op.add_column("document_chunks", sa.Column("search_text", sa.Text(), nullable=True))
    _set_expressions(INDEXED_TEXT)


def downgrade() -> None:
    _set_expressions(OLD_INDEXED_TEXT)
    op.drop_column("document_chunks", "search_text")
