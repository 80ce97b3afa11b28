"""The layers import one way (README, Architecture): the workers and the shared embedding
model never reach into the GraphQL layer, and the API reaches the embedder without going
through the workers. Read from the source (AST), so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


# Packages of the GraphQL layer, and gql_server modules that belong to it.
GRAPHQL_PACKAGES = ("strawberry", "graphql")
GRAPHQL_MODULES = ("resolvers", "types", "schema", "context", "graphql_view")


def _offences(folder: str, forbidden_packages: tuple[str, ...]) -> list[str]:
    offences = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in sorted(_imports(path)):
            parts = name.split(".")
            graphql_module = parts[0] == "gql_server" and any(part in GRAPHQL_MODULES for part in parts[1:])
            if graphql_module or parts[0] in forbidden_packages:
                offences.append(f"{path.relative_to(ROOT)} imports {name}")
    return offences


def test_workers_import_no_graphql_layer() -> None:
    assert _offences("workers", GRAPHQL_PACKAGES) == []


def test_the_shared_embedder_imports_neither_workers_nor_graphql() -> None:
    assert _offences("gql_server/embedding", (*GRAPHQL_PACKAGES, "workers")) == []


def test_retrieval_does_not_import_the_workers() -> None:
    assert [name for name in _imports(ROOT / "gql_server/rag/retrieval.py") if name.startswith("workers")] == []
