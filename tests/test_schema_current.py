"""schema.graphql is generated from the code (`ragql export-schema`); it must not be stale."""

from pathlib import Path

from gql_server.schema import export_schema_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"


def test_schema_graphql_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == export_schema_sdl(), (
        "schema.graphql is stale: run `make schema` (ragql export-schema) and commit it"
    )
