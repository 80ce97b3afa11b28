"""Chunk context header: indexed and embedded with the chunk, not part of its snippet

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:00:00

`document_chunks.context` holds the document's title (a text file's first line, a PDF's
metadata title or else its file name) for chunks that do not already start with it. The
pipeline embeds `context + "\\n\\n" + text`, and the lexical columns index both, while
`text` stays exactly the passage quoted as a citation snippet.

`search_vector` and `term_count` are regenerated from the same expression, so BM25's term
frequencies, lengths and the trigger-maintained statistics of 0002 all count the header.
Changing a generated expression rewrites the table without firing row or statement
triggers, so the statistics are rebuilt here from the rewritten rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXED_TEXT = "coalesce(context || E'\\n\\n', '') || text"
OLD_INDEXED_TEXT = "text"


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
    op.add_column("document_chunks", sa.Column("context", sa.Text(), nullable=True))
    _set_expressions(INDEXED_TEXT)


def downgrade() -> None:
    _set_expressions(OLD_INDEXED_TEXT)
    op.drop_column("document_chunks", "context")
