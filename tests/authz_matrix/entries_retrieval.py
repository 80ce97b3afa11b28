"""Matrix entries for retrieval (issue 5): `search` answers for the models a caller may use
and looks exactly like a missing model to everybody else — never another model's passages."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import numpy as np

from gql_server.db.models import Document, DocumentChunk, DocumentKind, DocumentStatus, RagModel
from tests.authz_matrix import MatrixEntry, Outcome, World, expect, world_object

Out = Outcome
SEARCH = """
query($modelId: UUID!, $query: String!) {
  search(modelId: $modelId, query: $query) {
    __typename
    ... on SearchResults { passages { text documentTitle } }
  }
}
"""
OWN_MARKER = "matrixownpassage"
FOREIGN_MARKER = "matrixforeignpassage"


async def _add_chunks(world: World, model: RagModel, marker: str) -> None:
    rng = np.random.default_rng(len(marker))
    vectors = rng.normal(size=(3, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    async with world.sessionmaker.begin() as session:
        document = Document(
            model_id=model.id,
            filename=f"{marker}.txt",
            title=marker,
            kind=DocumentKind.TEXT,
            size_bytes=100,
            sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            status=DocumentStatus.READY,
            progress=1.0,
            chunk_count=3,
        )
        session.add(document)
        await session.flush()
        session.add_all(
            DocumentChunk(
                document_id=document.id,
                model_id=model.id,
                chunk_index=index,
                text=f"{marker} glacier sample {index}",
                token_count=8,
                embedding=vectors[index],
            )
            for index in range(3)
        )


@world_object("search_corpus")
async def _search_corpus(world: World) -> RagModel:
    """Searchable chunks in "model" and in "foreign_model", with the same words."""
    model = await world.get("model")
    await _add_chunks(world, model, OWN_MARKER)
    await _add_chunks(world, await world.get("foreign_model"), FOREIGN_MARKER)
    return model


def _search_in(model_name: str) -> Any:
    async def build(world: World, actor: str) -> dict[str, Any]:
        await world.get("search_corpus")
        return {"modelId": await world.id_of(model_name), "query": "glacier sample"}

    return build


def _only_from(marker: str) -> Any:
    def check(value: Any, world: World, actor: str) -> None:
        assert value["__typename"] == "SearchResults", value
        texts = [passage["text"] for passage in value["passages"]]
        assert texts and all(marker in text for text in texts), texts

    return check


ENTRIES = [
    MatrixEntry(
        field="search",
        kind="query",
        case="own model",
        document=SEARCH,
        variables=_search_in("model"),
        expect=expect.model_users(),
        check=_only_from(OWN_MARKER),
    ),
    MatrixEntry(
        field="search",
        kind="query",
        case="foreign model",
        document=SEARCH,
        variables=_search_in("foreign_model"),
        expect=expect.per_actor(
            anonymous=Out.UNAUTHENTICATED,
            user=Out.HIDDEN,
            member=Out.HIDDEN,
            admin=Out.ALLOWED,
            superadmin=Out.ALLOWED,
            chat_token=Out.ALLOWED,
        ),
        check=_only_from(FOREIGN_MARKER),
    ),
]
