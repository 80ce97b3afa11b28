"""Layering, checked on the source (a short AST walk instead of import-linter).

Services, repositories, retrieval and the LLM providers raise the domain errors of
gql_server/exceptions.py and return rows; only the GraphQL edge knows about the API: a
domain's resolvers.py, types.py and loaders.py, the modules directly in gql_server/ (schema,
context, errors, masking, the view), kit/, and the two modules EDGE_MODULES names with their
reasons. Every other module of a package is checked. rag/ (retrieval, prompts, citations) is a
library below the API and imports no GraphQL at all; the `search` query that exposes it is
the GraphQL domain gql_server/search/ (its types.py and resolvers.py).
The workers sit below the API: they import no strawberry and nothing from a domain's
GraphQL edge. And no module uses an SDK's private modules (`openai._…`, `anthropic._…`):
those change without notice between releases.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
ROOT = REPOSITORY / "gql_server"
WORKERS = REPOSITORY / "workers"
GRAPHQL_PACKAGES = ("strawberry", "graphql", "strawberry_sqlalchemy_mapper")
EDGE_FILES = {"resolvers.py", "types.py"}
SDKS = ("openai", "anthropic", "ollama")


# A domain's GraphQL edge: its types, its resolvers and their per-request dataloaders.
DOMAIN_EDGE_FILES = EDGE_FILES | {"loaders.py"}
# The other modules in a package that belong to the GraphQL edge, each for its reason.
EDGE_MODULES = {
    "gql_server/access/watch.py": "ends an open subscription with a GraphQL error when access is lost",
    "gql_server/security/headers.py": "hashes the inline script of strawberry's GraphiQL page for its CSP",
}
EDGE_PACKAGES = {"gql_server/kit": "the GraphQL kit: page type, permissions on fields, the mapper"}


def below_the_resolvers() -> list[Path]:
    """Every module of a package under gql_server but the GraphQL edge (services,
    repositories, rag/, llm/, documents/acceptance.py, chat/attachments.py, ...), and workers/.
    The modules directly in gql_server/ (schema, context, errors, the view) are the edge."""
    paths = {
        path
        for path in ROOT.glob("*/**/*.py")
        if path.name not in DOMAIN_EDGE_FILES
        and _relative(path) not in EDGE_MODULES
        and not any(_relative(path).startswith(f"{package}/") for package in EDGE_PACKAGES)
    }
    paths |= set(WORKERS.rglob("*.py"))
    return sorted(paths)


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """Every absolute module an import statement names (and `from x import y` as x.y too,
    so `from gql_server.documents import resolvers` counts as importing the resolvers)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def graphql_imports(path: Path) -> list[str]:
    return sorted(
        {
            f"{name} (line {line})"
            for name, line in imported_modules(path)
            if name.split(".")[0] in GRAPHQL_PACKAGES
        }
    )


def edge_imports(path: Path) -> list[str]:
    """Imports of gql_server/<domain>/resolvers.py or types.py (or of the schema)."""
    found = set()
    for name, line in imported_modules(path):
        parts = name.split(".")
        if parts[0] == "gql_server" and (
            (len(parts) >= 3 and f"{parts[2]}.py" in EDGE_FILES) or parts[1:2] == ["schema"]
        ):
            found.add(f"{name} (line {line})")
    return sorted(found)


def _relative(path: Path) -> str:
    return path.relative_to(REPOSITORY).as_posix()


def test_the_check_covers_the_layers() -> None:
    names = {_relative(path) for path in below_the_resolvers()}
    assert {
        "gql_server/chat/service.py",
        "gql_server/documents/service.py",
        "gql_server/models/repository.py",
        "gql_server/rag/retrieval.py",
        "workers/tasks.py",
    } <= names
    assert any(name.startswith("gql_server/llm/") for name in names)
    assert any(name.startswith("workers/pipeline/") for name in names)
    assert {
        "gql_server/rag/citations.py",
        "gql_server/chat/attachments.py",
        "gql_server/documents/acceptance.py",
        "gql_server/chat/generation.py",
        "gql_server/events/kinds.py",
    } <= names
    assert not names & {
        "gql_server/search/resolvers.py",
        "gql_server/chat/loaders.py",
        "gql_server/kit/page.py",
    }


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import strawberry\nfrom graphql import GraphQLError\n"
        "from gql_server.documents import resolvers\nfrom gql_server.chat.types import ChatMessage\n"
        "from openai._base_client import AsyncAPIClient\n"
    )
    assert graphql_imports(sample) == [
        "graphql (line 2)",
        "graphql.GraphQLError (line 2)",
        "strawberry (line 1)",
    ]
    assert edge_imports(sample) == [
        "gql_server.chat.types (line 4)",
        "gql_server.chat.types.ChatMessage (line 4)",
        "gql_server.documents.resolvers (line 3)",
    ]
    assert private_sdk_imports(sample) == [
        "openai._base_client (line 5)",
        "openai._base_client.AsyncAPIClient (line 5)",
    ]


@pytest.mark.parametrize("path", below_the_resolvers(), ids=_relative)
def test_no_graphql_below_the_resolvers(path: Path) -> None:
    assert graphql_imports(path) == [], f"{_relative(path)} imports the GraphQL layer"
    # Nor a domain's types or resolvers: returning a union member from below the edge (as
    # chat/attachments.py once did, importing chat.types) is the same mistake one step removed.
    assert edge_imports(path) == [], f"{_relative(path)} imports a resolver, a type or the schema"


@pytest.mark.parametrize("path", sorted(WORKERS.rglob("*.py")), ids=_relative)
def test_workers_import_nothing_from_the_graphql_edge(path: Path) -> None:
    assert edge_imports(path) == [], f"{_relative(path)} imports a resolver, a type or the schema"


def private_sdk_imports(path: Path) -> list[str]:
    return sorted(
        {
            f"{name} (line {line})"
            for name, line in imported_modules(path)
            if name.split(".")[0] in SDKS and any(part.startswith("_") for part in name.split(".")[1:])
        }
    )


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")) + sorted(WORKERS.rglob("*.py")), ids=_relative)
def test_no_private_sdk_modules(path: Path) -> None:
    assert private_sdk_imports(path) == [], f"{_relative(path)} imports an SDK's private module"


def test_the_shared_embedder_imports_neither_workers_nor_graphql() -> None:
    # Both the API (query vectors) and the workers (chunk vectors) use gql_server/embedding/.
    offences = [
        f"{_relative(path)} imports {name} (line {line})"
        for path in sorted((ROOT / "embedding").rglob("*.py"))
        for name, line in imported_modules(path)
        if name.split(".")[0] in (*GRAPHQL_PACKAGES, "workers")
    ]
    assert offences == []


def test_retrieval_does_not_import_the_workers() -> None:
    names = [name for name, _ in imported_modules(ROOT / "rag" / "retrieval.py")]
    assert [name for name in names if name.split(".")[0] == "workers"] == []
