"""Chunks partitioned by model: one HNSW and one GIN index per model

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 08:00:00

Every retrieval runs inside one model. With one table-wide HNSW index a model holding 5 %
of the chunks makes the iterative scan visit ~20 rows (and heap-check each against the
model filter) for every one it keeps, and the table-wide GIN posting lists hold every
model's chunks. pgvector's documentation recommends partitioning for exactly this
("many different filter values"): `document_chunks` becomes a LIST-partitioned table on
`model_id`, each model's partition carrying its own HNSW, GIN and session indexes, and a
query with `model_id = $1` is pruned to that partition at plan time (measured in
bench/retrieval_bench.py, docs/benchmarks.md).

- A partition is created for every model by the `models_chunk_partition` trigger (AFTER
  INSERT on models) through `ragql_create_chunk_partition(model_id)`: `CREATE TABLE ...
  (LIKE document_chunks ...)` + `ATTACH PARTITION`, which takes SHARE UPDATE EXCLUSIVE
  on the parent (`CREATE TABLE ... PARTITION OF` would take ACCESS EXCLUSIVE and stall
  every retrieval until the creating transaction commits). ATTACH creates the partition's
  indexes and foreign keys from the parent's.
- Deleting a model cascades to its chunks as before; its then empty partition is detached
  (`DETACH ... CONCURRENTLY`, outside any transaction) and dropped by
  `gql_server/storage/chunk_partitions.py`, after the delete and at every start-up.
- The primary key becomes (id, model_id) and the unique (document_id, chunk_index) gains
  model_id: PostgreSQL requires the partition key in unique constraints. Ids still come
  from the one sequence, so `id` stays unique on its own.
- The BM25 statistics triggers of 0002 move to the partitioned table (statement-level
  triggers on the root see the rows of every partition in their transition tables,
  cascades included). The statistics themselves are unchanged: the rows are copied
  as they are, with the triggers dropped during the copy.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "id, document_id, model_id, session_id, chunk_index, text, context, page_start, page_end, "
    "row_start, row_end, token_count, embedding"
)

_TRIGGERS = (
    ("insert", "INSERT", "NEW TABLE AS new_chunks"),
    ("delete", "DELETE", "OLD TABLE AS old_chunks"),
    ("update", "UPDATE", "OLD TABLE AS old_chunks NEW TABLE AS new_chunks"),
)

# Partition names are derived from the model id, so the sweeper can tell whose it is.
_CREATE_PARTITION_FUNCTION = """
CREATE FUNCTION ragql_create_chunk_partition(model uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    partition_name text := 'document_chunks_' || replace(model::text, '-', '');
BEGIN
    IF to_regclass(quote_ident(partition_name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I (LIKE document_chunks INCLUDING DEFAULTS INCLUDING GENERATED '
        'INCLUDING STORAGE INCLUDING COMPRESSION)',
        partition_name
    );
    EXECUTE format(
        'ALTER TABLE document_chunks ATTACH PARTITION %I FOR VALUES IN (%L)', partition_name, model
    );
END
$$;
"""

_MODEL_TRIGGER_FUNCTION = """
CREATE FUNCTION ragql_models_chunk_partition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ragql_create_chunk_partition(NEW.id);
    RETURN NULL;
END
$$;
"""


def _create_indexes(table: str) -> None:
    op.execute(
        f"CREATE INDEX ix_document_chunks_embedding_hnsw ON {table} "
        "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    op.execute(f"CREATE INDEX ix_document_chunks_search_vector ON {table} USING gin (search_vector)")
    op.execute(f"CREATE INDEX ix_document_chunks_session_id ON {table} (session_id)")


def _create_statistics_triggers() -> None:
    for name, kind, transition in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER bm25_chunks_{name} AFTER {kind} ON document_chunks "
            f"REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION bm25_track_chunk_changes()"
        )


def _drop_statistics_triggers() -> None:
    for name, _, _ in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS bm25_chunks_{name} ON document_chunks")


def _move_table_aside() -> None:
    """Rename the current table and free the names its indexes and constraints hold."""
    _drop_statistics_triggers()
    op.execute("ALTER SEQUENCE document_chunks_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE document_chunks RENAME TO document_chunks_previous")
    for index in (
        "ix_document_chunks_embedding_hnsw",
        "ix_document_chunks_search_vector",
        "ix_document_chunks_session_id",
        "ix_document_chunks_model_id",
    ):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute(
        "ALTER TABLE document_chunks_previous "
        "DROP CONSTRAINT pk_document_chunks, DROP CONSTRAINT uq_document_chunks_document_chunk_index"
    )


def _add_constraints(table: str, primary_key: str, unique: str) -> None:
    op.execute(
        f"ALTER TABLE {table} "
        f"ADD CONSTRAINT pk_document_chunks PRIMARY KEY ({primary_key}), "
        f"ADD CONSTRAINT uq_document_chunks_document_chunk_index UNIQUE ({unique})"
    )
    for column, target, name in (
        ("document_id", "documents", "fk_document_chunks_document_id_documents"),
        ("model_id", "models", "fk_document_chunks_model_id_models"),
        ("session_id", "chat_sessions", "fk_document_chunks_session_id_chat_sessions"),
    ):
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} "
            f"FOREIGN KEY ({column}) REFERENCES {target} (id) ON DELETE CASCADE"
        )


def upgrade() -> None:
    _move_table_aside()
    op.execute(
        "CREATE TABLE document_chunks (LIKE document_chunks_previous INCLUDING DEFAULTS "
        "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY LIST (model_id)"
    )
    op.execute(
        "ALTER TABLE document_chunks_previous "
        "DROP CONSTRAINT fk_document_chunks_document_id_documents, "
        "DROP CONSTRAINT fk_document_chunks_model_id_models, "
        "DROP CONSTRAINT fk_document_chunks_session_id_chat_sessions"
    )
    _add_constraints("document_chunks", "id, model_id", "document_id, chunk_index, model_id")
    op.execute(_CREATE_PARTITION_FUNCTION)
    op.execute(_MODEL_TRIGGER_FUNCTION)
    op.execute("SELECT ragql_create_chunk_partition(id) FROM models")
    op.execute(f"INSERT INTO document_chunks ({_COLUMNS}) SELECT {_COLUMNS} FROM document_chunks_previous")
    op.execute("DROP TABLE document_chunks_previous")
    op.execute("ALTER SEQUENCE document_chunks_id_seq OWNED BY document_chunks.id")
    # Built per partition, after the copy (bulk builds, not one insert at a time).
    _create_indexes("document_chunks")
    _create_statistics_triggers()
    op.execute(
        "CREATE TRIGGER models_chunk_partition AFTER INSERT ON models "
        "FOR EACH ROW EXECUTE FUNCTION ragql_models_chunk_partition()"
    )
    op.execute("ANALYZE document_chunks")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS models_chunk_partition ON models")
    op.execute("DROP FUNCTION IF EXISTS ragql_models_chunk_partition()")
    _drop_statistics_triggers()
    op.execute("ALTER SEQUENCE document_chunks_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE document_chunks RENAME TO document_chunks_partitioned")
    for index in (
        "ix_document_chunks_embedding_hnsw",
        "ix_document_chunks_search_vector",
        "ix_document_chunks_session_id",
    ):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute(
        "ALTER TABLE document_chunks_partitioned "
        "DROP CONSTRAINT pk_document_chunks, DROP CONSTRAINT uq_document_chunks_document_chunk_index"
    )
    op.execute(
        "CREATE TABLE document_chunks (LIKE document_chunks_partitioned INCLUDING DEFAULTS "
        "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)"
    )
    op.execute(f"INSERT INTO document_chunks ({_COLUMNS}) SELECT {_COLUMNS} FROM document_chunks_partitioned")
    op.execute("DROP TABLE document_chunks_partitioned")  # and its partitions
    op.execute("DROP FUNCTION IF EXISTS ragql_create_chunk_partition(uuid)")
    op.execute("ALTER SEQUENCE document_chunks_id_seq OWNED BY document_chunks.id")
    _add_constraints("document_chunks", "id", "document_id, chunk_index")
    _create_indexes("document_chunks")
    op.execute("CREATE INDEX ix_document_chunks_model_id ON document_chunks (model_id)")
    _create_statistics_triggers()
