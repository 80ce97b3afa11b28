"""The /v1 routes (starlette): GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions.

Authenticated like GraphQL (gql_server/auth/bearer.py): a personal access token with the
CHAT scope, or a log-in session's access token, as `Authorization: Bearer`. Every error is
OpenAI's shape (errors.py). The answer itself is generation's (chat/generation.py): this
module only turns its events into OpenAI's response or SSE chunks (wire.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from gql_server.auth.bearer import authenticate_bearer
from gql_server.db.availability import DATABASE_UNAVAILABLE_MESSAGE, DatabaseUnavailable
from gql_server.db.models import AccessTokenScope, User
from gql_server.documents.downloads import download_url
from gql_server.events.kinds import AnswerDone, AnswerEvent, AnswerFailed, AnswerSources, AnswerToken
from gql_server.exceptions import (
    GenerationInProgressError,
    InvalidInputError,
    NotFoundError,
    UsageQuotaExceededError,
)
from gql_server.openai_api import service, wire
from gql_server.openai_api.errors import (
    OpenAIError,
    invalid_request,
    missing_scope,
    model_not_found,
    unauthenticated,
)
from gql_server.openai_api.request import CompletionRequest, parse_completion_request
from gql_server.state import AppState

logger = logging.getLogger(__name__)

# How much longer than the generation timeout a response waits for the answer's last event.
WAIT_MARGIN_SECONDS = 60.0
NO_KEY = (
    "You didn't provide an API key. Send `Authorization: Bearer <token>` with a ragql personal "
    "access token (ragql_pat_…) or an access token."
)

Handler = Callable[[Request], Awaitable[Response]]


def _error_response(error: OpenAIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code)


def _openai_errors(handler: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except OpenAIError as error:
            if error.status_code >= 500:
                logger.warning("/v1 request failed: %s", error.message)
            return _error_response(error)

    return handle


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "").strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None


async def _caller(request: Request) -> tuple[AppState, User]:
    state: AppState = request.state.app_state
    token = _bearer(request)
    if token is None:
        raise unauthenticated(NO_KEY)
    try:
        identity = await authenticate_bearer(state.sessionmaker, state.tokens, token)
    except DatabaseUnavailable as error:
        raise OpenAIError(
            503, DATABASE_UNAVAILABLE_MESSAGE, "server_error", None, "database_unavailable"
        ) from error
    if identity.user is None:
        raise unauthenticated(identity.reason or "The access token is not valid.")
    if identity.personal_token is not None and not identity.personal_token.allows(AccessTokenScope.CHAT):
        raise missing_scope()
    return state, identity.user


@_openai_errors
async def list_models(request: Request) -> Response:
    state, user = await _caller(request)
    async with state.sessionmaker() as session:
        rows = await service.usable_models(session, user)
    return JSONResponse({"object": "list", "data": [wire.model_object(row) for row in rows]})


@_openai_errors
async def retrieve_model(request: Request) -> Response:
    state, user = await _caller(request)
    model = request.path_params["model_id"]
    try:
        async with state.sessionmaker() as session:
            row = await service.usable_model(session, user, model)
    except NotFoundError:
        raise model_not_found(model) from None
    return JSONResponse(wire.model_object(row))


async def _body(request: Request) -> object:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise invalid_request(
            "We could not parse the JSON body of your request: send a JSON object "
            "(Content-Type: application/json)."
        ) from None


class _Answer:
    """The events of one answer, handed over by the generation task in this process."""

    def __init__(self, timeout: float) -> None:
        self.queue: asyncio.Queue[AnswerEvent] = asyncio.Queue()
        self.timeout = timeout

    def listener(self, event: AnswerEvent) -> None:
        self.queue.put_nowait(event)

    async def next(self) -> AnswerEvent:
        try:
            async with asyncio.timeout(self.timeout):
                return await self.queue.get()
        except TimeoutError:
            raise OpenAIError(
                504, "The answer did not finish in time.", "server_error", None, "timeout"
            ) from None


def _failure(event: AnswerFailed) -> OpenAIError:
    return OpenAIError(502, event.message or "The answer failed.", "server_error", None, "generation_failed")


@_openai_errors
async def chat_completions(request: Request) -> Response:
    state, user = await _caller(request)
    completion_request = parse_completion_request(await _body(request))
    answer = _Answer(state.settings.generation_timeout_seconds + WAIT_MARGIN_SECONDS)
    try:
        started = await service.start_completion(state, user, completion_request, answer.listener)
    except NotFoundError:
        raise model_not_found(completion_request.model) from None
    except InvalidInputError as error:
        raise invalid_request(error.message, "messages", "context_length_exceeded") from None
    except GenerationInProgressError as error:
        raise OpenAIError(429, error.message, "requests", None, "generation_in_progress") from None
    except UsageQuotaExceededError as error:
        # OpenAI's own answer to a used-up quota: 429 insufficient_quota.
        raise OpenAIError(429, error.message, "insufficient_quota", None, "insufficient_quota") from None
    base = str(request.base_url).rstrip("/")
    secret = state.settings.jwt_secret

    def sign(document_id: Any) -> str:
        return base + download_url(secret, document_id, user)

    context = _Completion(completion_request, started, answer, sign)
    try:
        if not completion_request.stream:
            return await context.whole()
        return await context.streamed(state)
    except BaseException:
        context.abandon(state)
        raise


class _Completion:
    def __init__(
        self,
        request: CompletionRequest,
        started: service.StartedCompletion,
        answer: _Answer,
        sign: wire.LinkSigner,
    ) -> None:
        self.request = request
        self.started = started
        self.answer = answer
        self.sign = sign
        self.sources: list[dict[str, Any]] = []
        job = started.job
        self.ids = {"message_id": job.message_id, "created": started.created, "model": request.model}
        self.extra = wire.ragql_fields(started.chat_session_id, job.message_id, job.persist)

    def abandon(self, state: AppState) -> None:
        """The client went away: an answer nobody stores is stopped (a stored one finishes)."""
        if not self.started.job.persist:
            state.generation.cancel_local(self.started.job.message_id)

    def _sources(self, *, final: bool) -> list[dict[str, Any]]:
        return [wire.public_source(source, self.sign, final=final) for source in self.sources]

    async def whole(self) -> Response:
        while True:
            event = await self.answer.next()
            match event:
                case AnswerSources(sources=sources):
                    self.sources = list(sources)
                case AnswerFailed():
                    raise _failure(event)
                case AnswerDone():
                    return JSONResponse(
                        wire.completion(
                            message_id=self.started.job.message_id,
                            created=self.started.created,
                            model=self.request.model,
                            text=event.text,
                            reason=wire.finish_reason(event.status, event.truncated),
                            usage=wire.usage_object(event.usage),
                            sources=self._sources(final=True),
                            citations=list(event.citations),
                            extra=self.extra,
                        )
                    )

    async def streamed(self, state: AppState) -> Response:
        # Wait for the first token (or the end) before answering: a failure before any text
        # is an HTTP error the SDK raises, not a broken stream.
        held: list[AnswerEvent] = []
        while True:
            event = await self.answer.next()
            if isinstance(event, AnswerSources):
                self.sources = list(event.sources)
                continue
            if isinstance(event, AnswerFailed):
                raise _failure(event)
            held.append(event)
            break
        return StreamingResponse(
            self._chunks(state, held),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _events(self, held: list[AnswerEvent]) -> AsyncIterator[AnswerEvent]:
        for event in held:
            yield event
        while True:
            yield await self.answer.next()

    async def _chunks(self, state: AppState, held: list[AnswerEvent]) -> AsyncIterator[bytes]:
        finished = False
        try:
            yield wire.sse(
                wire.chunk(
                    **self.ids,  # type: ignore[arg-type]
                    delta={"role": "assistant", "content": ""},
                    ragql_sources=self._sources(final=False),
                )
            )
            async for event in self._events(held):
                if isinstance(event, AnswerToken):
                    yield wire.sse(wire.chunk(**self.ids, delta={"content": event.delta}))  # type: ignore[arg-type]
                elif isinstance(event, AnswerDone):
                    yield wire.sse(
                        wire.chunk(
                            **self.ids,  # type: ignore[arg-type]
                            delta={},
                            reason=wire.finish_reason(event.status, event.truncated),
                            ragql_sources=self._sources(final=True),
                            ragql_citations=list(event.citations),
                            **self.extra,
                        )
                    )
                    if self.request.include_usage:
                        usage = wire.usage_object(event.usage)
                        yield wire.sse(wire.chunk(**self.ids, delta=None, usage=usage))  # type: ignore[arg-type]
                    break
                elif isinstance(event, AnswerFailed):
                    yield wire.sse(_failure(event).body())
                    break
            finished = True
            yield wire.sse("[DONE]")
        except OpenAIError as error:  # the wait timed out mid-stream
            yield wire.sse(error.body())
            yield wire.sse("[DONE]")
        finally:
            if not finished:
                with contextlib.suppress(Exception):
                    self.abandon(state)


@_openai_errors
async def unknown_path(request: Request) -> Response:
    raise OpenAIError(
        404, f"Invalid URL ({request.method} {request.url.path}).", "invalid_request_error", None, None
    )


def openai_routes() -> BaseRoute:
    """The OpenAI-compatible API, mounted at /v1 (create_app lists it)."""
    return Mount(
        "/v1",
        routes=[
            Route("/models", list_models, methods=["GET"]),
            Route("/models/{model_id}", retrieve_model, methods=["GET"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/{path:path}", unknown_path),
        ],
    )
