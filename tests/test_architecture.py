"""Layering, checked on the source: nothing below the resolvers imports strawberry or graphql.

Services, repositories, retrieval and the LLM providers raise the domain errors of
gql_server/exceptions.py and return rows; only the GraphQL edge (resolvers, types, the
schema and its helpers) knows about the API. rag/ is a domain like the others: its
resolvers.py and types.py are its edge and may use strawberry; the rest of rag/ may not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "gql_server"
GRAPHQL_PACKAGES = ("strawberry", "graphql", "strawberry_sqlalchemy_mapper")
EDGE_FILES = {"resolvers.py", "types.py"}


def below_the_resolvers() -> list[Path]:
    paths = set(ROOT.glob("*/service.py")) | set(ROOT.glob("*/repository.py"))
    paths |= {path for path in (ROOT / "rag").rglob("*.py") if path.name not in EDGE_FILES}
    paths |= set((ROOT / "llm").rglob("*.py"))
    return sorted(paths)


def graphql_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [f"{name} (line {node.lineno})" for name in names if name.split(".")[0] in GRAPHQL_PACKAGES]
    return found


def test_the_check_covers_the_layers() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in below_the_resolvers()}
    assert {"chat/service.py", "documents/service.py", "models/repository.py", "rag/retrieval.py"} <= names
    assert any(name.startswith("llm/") for name in names)
    assert "rag/resolvers.py" not in names


@pytest.mark.parametrize("path", below_the_resolvers(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_graphql_below_the_resolvers(path: Path) -> None:
    assert graphql_imports(path) == [], f"{path.relative_to(ROOT)} imports the GraphQL layer"
