"""Migrations that move data: chunks into per-model partitions (0004) and back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command

from gql_server.db.embedded import EmbeddedPostgres
from gql_server.db.migrate import alembic_config
from gql_server.storage.chunk_partitions import partition_name


@pytest.fixture
def empty_database(postgres_server: EmbeddedPostgres) -> Iterator[str]:
    name = "m_" + uuid.uuid4().hex[:16]
    postgres_server.psql(f"CREATE DATABASE {name};")
    yield name
    postgres_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


def _sql(server: EmbeddedPostgres, database: str, statement: str) -> str:
    return server.psql(f"\\c {database}\n{statement}")


def _value(server: EmbeddedPostgres, database: str, statement: str) -> str:
    output = _sql(server, database, statement).strip().splitlines()
    # psql's aligned output: header, rule, value, "(1 row)"
    return output[-2].strip()


def _insert_model(model_id: uuid.UUID, name: str) -> str:
    return (
        "INSERT INTO models (id, name, description, provider, system_prompt, temperature,"
        " max_output_tokens, context_window_tokens, top_k, hybrid_search)"
        f" VALUES ('{model_id}', '{name}', '', 'EXTRACTIVE', '', 0.2, 512, 4096, 5, true);"
    )


def test_chunks_move_into_partitions_and_back(postgres_server: EmbeddedPostgres, empty_database: str) -> None:
    server, database = postgres_server, empty_database
    config = alembic_config(server.url(database))
    command.upgrade(config, "0003")
    models = [uuid.uuid4(), uuid.uuid4()]
    statements: list[str] = []
    for index, model in enumerate(models):
        document = uuid.uuid4()
        statements.append(_insert_model(model, f"m{index}"))
        statements.append(
            "INSERT INTO documents (id, model_id, filename, title, kind, size_bytes, sha256, status, progress,"
            " chunk_count, warnings, file_kept, attempts, created_at, updated_at) VALUES"
            f" ('{document}', '{model}', 'd.txt', 'Doc', 'TEXT', 1, '{uuid.uuid4().hex}', 'READY', 1, 3, '[]',"
            " false, 0, now(), now());"
        )
        for chunk in range(3):
            vector = "[" + ",".join(["0.05"] * 384) + "]"
            statements.append(
                "INSERT INTO document_chunks (document_id, model_id, chunk_index, text, token_count, embedding)"
                f" VALUES ('{document}', '{model}', {chunk}, 'walrus number {chunk} of model {index}', 5,"
                f" '{vector}');"
            )
    _sql(server, database, "\n".join(statements))
    ids_before = _value(
        server, database, "SELECT string_agg(id::text, ',' ORDER BY id) FROM document_chunks;"
    )
    stats_before = _value(
        server,
        database,
        "SELECT string_agg(scope_id || ':' || chunk_count, ',' ORDER BY scope_id) FROM bm25_corpus_stats;",
    )

    command.upgrade(config, "head")
    assert (
        _value(server, database, "SELECT string_agg(id::text, ',' ORDER BY id) FROM document_chunks;")
        == ids_before
    )
    for model in models:
        assert _value(server, database, f"SELECT count(*) FROM {partition_name(model)};") == "3"
    assert (
        _value(
            server,
            database,
            "SELECT string_agg(scope_id || ':' || chunk_count, ',' ORDER BY scope_id) FROM bm25_corpus_stats;",
        )
        == stats_before
    )
    # A new model gets its partition from the trigger; the id sequence carries on.
    new_model = uuid.uuid4()
    _sql(
        server,
        database,
        _insert_model(new_model, "new"),
    )
    assert _value(server, database, f"SELECT to_regclass('{partition_name(new_model)}') IS NOT NULL;") == "t"
    # The statistics triggers fire on the partitioned table (a delete through the cascade).
    _sql(server, database, f"DELETE FROM documents WHERE model_id = '{models[0]}';")
    assert (
        _value(server, database, f"SELECT count(*) FROM bm25_corpus_stats WHERE scope_id = '{models[0]}';")
        == "0"
    )

    command.downgrade(config, "0003")
    assert _value(server, database, "SELECT count(*) FROM document_chunks;") == "3"
    assert _value(server, database, "SELECT relkind FROM pg_class WHERE relname = 'document_chunks';") == "r"
    command.upgrade(config, "head")
    assert _value(server, database, f"SELECT count(*) FROM {partition_name(models[1])};") == "3"
