"""What the MCP tools do, with the same rules as GraphQL and /v1: the models the caller may
use (models/repository.py `get_readable_model`, the access policy), retrieval through
rag/retrieval.py `retrieve_passages` (filtered in SQL by what the user may read), and answers
through the OpenAI-compatible API's service (chat/generation.py: the sendMessage pipeline),
not stored (`store: false`): an agent's questions do not fill the user's chat history."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from gql_server.db.models import RagModel, User
from gql_server.documents.downloads import download_url
from gql_server.embedding.embedder import EmbeddingOptions
from gql_server.events.kinds import AnswerDone, AnswerEvent, AnswerFailed, AnswerSources
from gql_server.exceptions import (
    GenerationInProgressError,
    InvalidInputError,
    NotFoundError,
    UsageQuotaExceededError,
)
from gql_server.openai_api import service as completions
from gql_server.openai_api.request import CompletionRequest
from gql_server.openai_api.wire import public_source
from gql_server.rag.citations import location_label
from gql_server.rag.retrieval import (
    MAX_K,
    MAX_QUERY_CHARACTERS,
    RetrievalMode,
    embed_query,
    retrieve_passages,
)
from gql_server.state import AppState

DEFAULT_K = 5
WAIT_MARGIN_SECONDS = 60.0


class ToolRefusal(Exception):
    """Told to the MCP client as the tool's error (isError), in words."""


def _model_info(model: RagModel) -> dict[str, Any]:
    return {"id": str(model.id), "name": model.name, "description": model.description}


async def list_models(state: AppState, user: User) -> list[dict[str, Any]]:
    async with state.sessionmaker() as session:
        return [_model_info(row) for row in await completions.usable_models(session, user)]


async def _model(state: AppState, user: User, model: str) -> RagModel:
    try:
        async with state.sessionmaker() as session:
            return await completions.usable_model(session, user, model)
    except NotFoundError:
        raise ToolRefusal(
            f"The model {model!r} does not exist or you may not use it (list_models)."
        ) from None


def _link(state: AppState, base_url: str, user: User, document_id: uuid.UUID) -> str:
    return base_url + download_url(state.settings.jwt_secret, document_id, user)


async def search(
    state: AppState, user: User, base_url: str, model: str, query: str, k: int = DEFAULT_K
) -> list[dict[str, Any]]:
    query = query.strip()
    if not query:
        raise ToolRefusal("The query is empty.")
    if len(query) > MAX_QUERY_CHARACTERS:
        raise ToolRefusal(f"The query is longer than {MAX_QUERY_CHARACTERS} characters.")
    row = await _model(state, user, model)
    k = max(1, min(k, MAX_K))
    mode = RetrievalMode.HYBRID if row.hybrid_search else RetrievalMode.DENSE
    # Embedding runs in a worker thread, outside any database transaction.
    query_embedding = await embed_query(query, EmbeddingOptions.from_settings(state.settings))
    async with state.sessionmaker.begin() as session:
        passages = await retrieve_passages(
            session, user, row.id, query, k=k, query_embedding=query_embedding, mode=mode
        )
    return [
        {
            "document_id": str(passage.document_id),
            "document_title": passage.document_title,
            "text": passage.text,
            "location": location_label(
                passage.page_start, passage.page_end, passage.row_start, passage.row_end, passage.location
            ),
            "page_start": passage.page_start,
            "page_end": passage.page_end,
            "row_start": passage.row_start,
            "row_end": passage.row_end,
            "score": round(float(passage.score), 6),
            "url": _link(state, base_url, user, passage.document_id),
        }
        for passage in passages
    ]


async def ask(state: AppState, user: User, base_url: str, model: str, question: str) -> dict[str, Any]:
    queue: asyncio.Queue[AnswerEvent] = asyncio.Queue()
    request = CompletionRequest(
        model=model, question=question, history=(), stream=False, include_usage=False, store=False
    )
    try:
        started = await completions.start_completion(state, user, request, queue.put_nowait)
    except NotFoundError:
        raise ToolRefusal(
            f"The model {model!r} does not exist or you may not use it (list_models)."
        ) from None
    except (InvalidInputError, GenerationInProgressError, UsageQuotaExceededError) as error:
        # Each says in a sentence what is wrong and what to do (wait, or when the quota resets).
        raise ToolRefusal(error.message) from None
    sources: list[dict[str, Any]] = []

    def sign(document_id: uuid.UUID) -> str:
        return _link(state, base_url, user, document_id)

    try:
        async with asyncio.timeout(state.settings.generation_timeout_seconds + WAIT_MARGIN_SECONDS):
            while True:
                event = await queue.get()
                if isinstance(event, AnswerSources):
                    sources = list(event.sources)
                elif isinstance(event, AnswerFailed):
                    raise ToolRefusal(event.message or "The answer failed.")
                elif isinstance(event, AnswerDone):
                    return {
                        "answer": event.text,
                        "citations": list(event.citations),
                        "sources": [public_source(source, sign, final=True) for source in sources],
                    }
    except BaseException:
        state.generation.cancel_local(started.job.message_id)
        raise
