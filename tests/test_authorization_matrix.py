"""Every root field of the schema, as each of five actors, against one real server.

The schema is the source of truth: a Query/Mutation/Subscription field without an entry
in tests/authz_matrix/entries_*.py fails `test_every_field_has_a_matrix_entry`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gql_server.db.embedded import EmbeddedPostgres
from gql_server.schema import build_schema
from gql_server.settings import Settings
from tests.authz_matrix import World, build_world, load_entries, run_entry, schema_fields
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, TEMPLATE_DATABASE, start_server
from tests.graphql_client import GraphQLClient

ENTRIES = load_entries()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def matrix_world(
    postgres_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """One database, one server and one world for the whole matrix."""
    name = "m_" + uuid.uuid4().hex[:16]
    postgres_server.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE};")
    data_dir: Path = tmp_path_factory.mktemp("matrix") / "data"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=postgres_server.url(name),  # type: ignore[arg-type]
        redis_url=None,
        secret_key="matrix-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        superadmin_email=SUPERADMIN_EMAIL,
        superadmin_password=SUPERADMIN_PASSWORD,  # type: ignore[arg-type]
        migrate_on_start=False,
        # Every actor runs every field; keep log-in limits out of the way.
        login_attempts_per_account=1000,
        login_attempts_per_address=10000,
    )
    uvicorn_server, task, app, base_url = await start_server(settings)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            state = app.state.app_state  # type: ignore[attr-defined]
            yield await build_world(state.sessionmaker, state.tokens, GraphQLClient(base_url, http), settings)
    finally:
        uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 30)
        postgres_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


def test_every_field_has_a_matrix_entry() -> None:
    in_schema = schema_fields(build_schema())
    covered = {entry.key for entry in ENTRIES}
    missing = sorted(in_schema - covered)
    stale = sorted(covered - in_schema)
    assert not missing, (
        "schema fields without an authorization-matrix entry (add them to tests/authz_matrix/entries_<domain>.py): "
        + ", ".join(f"{kind} {name}" for kind, name in missing)
    )
    assert not stale, "matrix entries for fields that are not in the schema: " + ", ".join(
        f"{kind} {name}" for kind, name in stale
    )


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("entry", ENTRIES, ids=[entry.label for entry in ENTRIES])
async def test_field_authorization(entry, matrix_world: World) -> None:  # type: ignore[no-untyped-def]
    problems = await run_entry(entry, matrix_world)
    assert not problems, "\n".join(problems)
