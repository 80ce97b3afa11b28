"""The `search` query: retrieval without an LLM, so clients can test what a model finds."""

from __future__ import annotations

import uuid

import strawberry

from gql_server.access.policy import can_read_model
from gql_server.context import Info
from gql_server.embedding.embedder import EmbeddingOptions
from gql_server.errors import maps_domain_errors
from gql_server.exceptions import InvalidInputError, NotFoundError
from gql_server.kit.field_permissions import signed_in
from gql_server.rag.retrieval import MAX_K, MAX_QUERY_CHARACTERS, embed_query, retrieve_passages
from gql_server.search.types import Passage, SearchMode, SearchResult, SearchResults


@strawberry.type
class RetrievalQuery:
    @strawberry.field(
        description=(
            "Passages of a model's documents best matching `query` (k is clamped to 1..50). "
            "A model you may not use answers NotFound, exactly like a missing one."
        ),
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def search(
        self,
        info: Info,
        model_id: uuid.UUID,
        query: str,
        k: int | None = 10,
        mode: SearchMode | None = SearchMode.HYBRID,
    ) -> SearchResult:
        user = info.context.require_user()
        query = query.strip()
        if not query:
            raise InvalidInputError.of("query", "The query is empty.")
        if len(query) > MAX_QUERY_CHARACTERS:
            raise InvalidInputError.of(
                "query", f"The query is longer than {MAX_QUERY_CHARACTERS} characters."
            )
        k = max(1, min(10 if k is None else k, MAX_K))
        mode = mode or SearchMode.HYBRID
        async with info.context.sessionmaker() as session:
            if not await can_read_model(session, user, model_id):
                raise NotFoundError()
        # Embedding runs in a worker thread, outside any database transaction.
        embedding = EmbeddingOptions.from_settings(info.context.state.settings)
        query_embedding = await embed_query(query, embedding) if mode is not SearchMode.LEXICAL else None
        async with info.context.sessionmaker.begin() as session:
            passages = await retrieve_passages(
                session,
                user,
                model_id,
                query,
                k=k,
                query_embedding=query_embedding,
                mode=mode.retrieval_mode,
            )
        return SearchResults(passages=[Passage.of(passage) for passage in passages])
