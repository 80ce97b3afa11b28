"""BM25 term statistics kept per model (and per chat session's attachments)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:00:00

BM25 needs, for the corpus a query runs against: the number of chunks N, the average
chunk length, each query term's document frequency, and per chunk its length and the
term frequencies. Term frequencies and lengths come from the chunk's own tsvector
(`search_vector`, PostgreSQL's `english` lexemes, positions kept), so the lexical ranking
works on exactly the lexemes the GIN index matches:

- `document_chunks.term_count`: the chunk's length for BM25, the number of indexed
  tokens (stop words excluded) — the positions in its tsvector, not `length()` which
  counts distinct lexemes. A stored generated column (it cannot refer to the generated
  `search_vector`, so it runs `to_tsvector` again).
- `bm25_corpus_stats(scope_id)`: chunk count and summed `term_count` per scope.
- `bm25_term_stats(scope_id, lexeme)`: in how many chunks of the scope the lexeme occurs.

A scope is a model's shared corpus (`scope_id = model_id`, chunks with session_id NULL)
or one chat session's attachments (`scope_id = session_id`): a session's query uses the
sum of its model's and its own statistics, and one session's files never shift another
session's (or the model's) IDF.

The statistics are maintained by statement-level triggers with transition tables on
`document_chunks`, so they stay right whatever writes chunks — the ingestion task,
attachment ingestion, document deletion, cascades from a deleted model or session, a
bulk COPY — with one aggregated upsert per statement rather than one per row. Upserts
run in (scope, lexeme) order so concurrent ingestions in one model queue on row locks
instead of deadlocking.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows entering (+1) and leaving (-1) the statistics, for each trigger kind.
_SOURCES = {
    "INSERT": "SELECT model_id, session_id, search_vector, term_count, 1 AS sign FROM new_chunks",
    "DELETE": "SELECT model_id, session_id, search_vector, term_count, -1 AS sign FROM old_chunks",
    "UPDATE": (
        "SELECT model_id, session_id, search_vector, term_count, 1 AS sign FROM new_chunks "
        "UNION ALL SELECT model_id, session_id, search_vector, term_count, -1 AS sign FROM old_chunks"
    ),
}

_APPLY_CHANGES = """
    WITH changed AS ({source})
    INSERT INTO bm25_corpus_stats AS s (scope_id, model_id, chunk_count, total_terms)
    SELECT coalesce(session_id, model_id), model_id, sum(sign), sum(sign * term_count)
    FROM changed
    GROUP BY 1, 2
    ORDER BY 1
    ON CONFLICT (scope_id) DO UPDATE
        SET chunk_count = s.chunk_count + excluded.chunk_count,
            total_terms = s.total_terms + excluded.total_terms;

    WITH changed AS ({source})
    INSERT INTO bm25_term_stats AS s (scope_id, lexeme, doc_freq)
    SELECT coalesce(changed.session_id, changed.model_id), entry.lexeme, sum(changed.sign)
    FROM changed CROSS JOIN LATERAL unnest(changed.search_vector) AS entry
    GROUP BY 1, 2
    HAVING sum(changed.sign) <> 0
    ORDER BY 1, 2
    ON CONFLICT (scope_id, lexeme) DO UPDATE SET doc_freq = s.doc_freq + excluded.doc_freq;
"""

_FUNCTION = """
CREATE FUNCTION bm25_track_chunk_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
{insert}
    ELSIF TG_OP = 'DELETE' THEN
{delete}
    ELSE
{update}
    END IF;
    IF TG_OP <> 'INSERT' THEN
        -- Terms and scopes that no chunk uses any more (the partial indexes find them).
        DELETE FROM bm25_term_stats WHERE doc_freq <= 0;
        DELETE FROM bm25_corpus_stats WHERE chunk_count <= 0;
    END IF;
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION tsvector_token_count(tsvector) RETURNS integer
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT coalesce(sum(coalesce(cardinality(positions), 1)), 0)::integer FROM unnest($1) $$
        """
    )
    op.add_column(
        "document_chunks",
        sa.Column(
            "term_count",
            sa.Integer(),
            sa.Computed("tsvector_token_count(to_tsvector('english'::regconfig, text))", persisted=True),
            nullable=False,
        ),
    )
    op.create_table(
        "bm25_corpus_stats",
        sa.Column("scope_id", sa.UUID(), nullable=False),
        sa.Column("model_id", sa.UUID(), nullable=False),
        sa.Column("chunk_count", sa.BigInteger(), nullable=False),
        sa.Column("total_terms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope_id", name=op.f("pk_bm25_corpus_stats")),
    )
    op.create_index(
        "ix_bm25_corpus_stats_empty",
        "bm25_corpus_stats",
        ["scope_id"],
        postgresql_where=sa.text("chunk_count <= 0"),
    )
    op.create_table(
        "bm25_term_stats",
        sa.Column("scope_id", sa.UUID(), nullable=False),
        sa.Column("lexeme", sa.Text(), nullable=False),
        sa.Column("doc_freq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope_id", "lexeme", name=op.f("pk_bm25_term_stats")),
    )
    op.create_index(
        "ix_bm25_term_stats_unused",
        "bm25_term_stats",
        ["scope_id"],
        postgresql_where=sa.text("doc_freq <= 0"),
    )
    indent = " " * 8
    bodies = {
        kind: "\n".join(indent + line for line in _APPLY_CHANGES.format(source=source).strip().splitlines())
        for kind, source in _SOURCES.items()
    }
    op.execute(_FUNCTION.format(insert=bodies["INSERT"], delete=bodies["DELETE"], update=bodies["UPDATE"]))
    for kind, transition in (
        ("INSERT", "NEW TABLE AS new_chunks"),
        ("DELETE", "OLD TABLE AS old_chunks"),
        ("UPDATE", "OLD TABLE AS old_chunks NEW TABLE AS new_chunks"),
    ):
        op.execute(
            f"CREATE TRIGGER bm25_chunks_{kind.lower()} AFTER {kind} ON document_chunks "
            f"REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION bm25_track_chunk_changes()"
        )
    # Chunks written before this migration.
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


def downgrade() -> None:
    for kind in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS bm25_chunks_{kind} ON document_chunks")
    op.execute("DROP FUNCTION IF EXISTS bm25_track_chunk_changes()")
    op.drop_table("bm25_term_stats")
    op.drop_table("bm25_corpus_stats")
    op.drop_column("document_chunks", "term_count")
    op.execute("DROP FUNCTION IF EXISTS tsvector_token_count(tsvector)")
