"""The generation runner: answers a question in a background task owned by the app.

`sendMessage` commits the question and a PENDING answer, then hands a `GenerationJob` to
the `GenerationManager`. The manager runs each job as an asyncio task that does not
belong to any request or WebSocket, so a client that disconnects does not stop its
answer. The task retrieves passages, builds the prompt, streams from the provider and
emits SOURCES, TOKEN..., then DONE or ERROR into the per-message event log and onto the
event bus. Per token it does no database work: one manager task saves the text of every
running answer every `PROGRESS_SAVE_SECONDS` for crash safety (one UPDATE for all of
them), and each answer is saved once at the end with the final status.
Whatever happens (provider failure, timeout, stop, shutdown), the answer is persisted
with its status and the text produced so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.chat import repository
from gql_server.chat.event_log import (
    InProcessEventLog,
    MessageEventLog,
    RedisEventLog,
    message_channel,
)
from gql_server.db.base import utcnow
from gql_server.db.models import ChatMessage, MessageRole, MessageStatus, RagModel, Role, User
from gql_server.embedding.embedder import EmbeddingOptions
from gql_server.events.bus import EventBus, RedisEventBus
from gql_server.events.kinds import (
    AnswerDone,
    AnswerEvent,
    AnswerFailed,
    AnswerSources,
    AnswerToken,
    GenerationStop,
)
from gql_server.llm.base import (
    ChatTurn,
    ContextPassage,
    Finish,
    GenerationRequest,
    LLMProvider,
    LLMProviderError,
    ProviderConfig,
    TokenDelta,
    Usage,
)
from gql_server.llm.extractive import Evidence, assess
from gql_server.llm.failure_messages import detailed_failure_message, public_failure_message
from gql_server.llm.guarded_http import ProviderHttpxClient
from gql_server.llm.registry import build_provider
from gql_server.llm.url_policy import policy_from_settings
from gql_server.models.service import provider_config
from gql_server.quotas import service as quota_service
from gql_server.rag.citations import (
    csv_source_table,
    extract_citations,
    location_label,
    preview,
    row_noun,
    source_location,
)
from gql_server.rag.evidence import question_term_weights
from gql_server.rag.prompt import build_generation_request
from gql_server.security.encryption import ApiKeyCipher, ApiKeyDecryptionError
from gql_server.settings import Settings

logger = logging.getLogger(__name__)

STOP_CHANNEL = "chat.stop"
PROGRESS_SAVE_SECONDS = 2.0
HISTORY_MESSAGES = 40
SNIPPET_CHARACTERS = 320
# As much of the question as retrieval searches (retrieval.MAX_QUERY_CHARACTERS).
QUESTION_SEARCHED_CHARACTERS = 2000
# Upper bounds on the provider's own waits; the model's whole answer is bounded by
# settings.generation_timeout_seconds.
MAX_REQUEST_TIMEOUT_SECONDS = 60.0
MAX_CONNECT_TIMEOUT_SECONDS = 10.0
# An unfinished answer older than the generation timeout plus this margin has no live
# task anywhere (its process died): it no longer blocks the user and is reported failed.
ABANDONED_MARGIN_SECONDS = 60.0
SHUTDOWN_GRACE_SECONDS = 10.0

STOPPED_BY_USER = "stop"
STOPPED_BY_SHUTDOWN = "shutdown"
SHUTDOWN_ERROR = "The server shut down before the answer finished; the partial answer is kept."
ABANDONED_ERROR = "The server stopped before the answer finished; the partial answer is kept."


@dataclass
class GenerationJob:
    message_id: uuid.UUID
    question_message_id: uuid.UUID
    chat_session_id: uuid.UUID
    user_id: uuid.UUID
    model_id: uuid.UUID
    question: str
    enqueued_at: float = field(default_factory=time.perf_counter)
    # The conversation before the question as the caller sent it (the OpenAI-compatible API
    # sends the whole history with each request); None: the chat session's stored messages.
    history: tuple[ChatTurn, ...] | None = None
    # False for an answer nobody stores (`"store": false` on /v1/chat/completions): no
    # message row exists, so nothing is saved and the events go to the listener only.
    persist: bool = True


# Called with each event of one answer, in order, by the process generating it.
AnswerListener = Callable[[AnswerEvent], None]


@dataclass
class _Progress:
    parts: list[str] = field(default_factory=list)
    saved_parts: int = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)


def abandoned_before(settings: Settings) -> Any:
    """Answers still in flight that were started before this have lost their process."""
    return utcnow() - timedelta(seconds=settings.generation_timeout_seconds + ABANDONED_MARGIN_SECONDS)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= SNIPPET_CHARACTERS:
        return text
    return text[: SNIPPET_CHARACTERS - 1].rsplit(" ", 1)[0] + "…"


def _history(rows: list[ChatMessage], question_message_id: uuid.UUID) -> list[ChatTurn]:
    """The conversation before the question, answered turns only."""
    turns: list[ChatTurn] = []
    for row in rows:
        if row.id == question_message_id:
            break
        if row.role is MessageRole.USER:
            turns.append(ChatTurn(role="user", content=row.content))
        elif row.status in (MessageStatus.COMPLETE, MessageStatus.STOPPED) and row.content.strip():
            turns.append(ChatTurn(role="assistant", content=row.content))
    return turns


async def _retrieve(
    session: Any,
    user: User,
    model: RagModel,
    chat_session_id: uuid.UUID,
    question: str,
    embedding: EmbeddingOptions,
) -> list[Any]:
    """The model's passages (and this session's attachments) that the user may read."""
    from gql_server.rag import retrieval

    mode = retrieval.RetrievalMode.HYBRID if model.hybrid_search else retrieval.RetrievalMode.DENSE
    return list(
        await retrieval.retrieve_passages(
            session,
            user,
            model.id,
            # A long message is searched by its opening; the whole of it still reaches the model.
            question[: retrieval.MAX_QUERY_CHARACTERS],
            k=model.top_k,
            chat_session_id=chat_session_id,
            mode=mode,
            relevance_threshold=model.relevance_threshold,
            embedding=embedding,
        )
    )


class GenerationManager:
    """Owns every generation task of this process, the event log, and stop requests."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        cipher: ApiKeyCipher,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.cipher = cipher
        # Queries are embedded like the chunks they are compared with (EMBEDDING_BACKEND ...).
        self.embedding = EmbeddingOptions.from_settings(settings)
        self.event_log: MessageEventLog
        if isinstance(bus, RedisEventBus):
            self.event_log = RedisEventLog(bus.redis)
        else:
            self.event_log = InProcessEventLog()
        self.tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._listeners: dict[uuid.UUID, AnswerListener] = {}
        self._owners: dict[uuid.UUID, uuid.UUID] = {}
        self._stop_reasons: dict[uuid.UUID, str] = {}
        self._providers: dict[ProviderConfig, LLMProvider] = {}
        self._retired_providers: list[LLMProvider] = []
        self._http: httpx.AsyncClient | None = None
        self._stop_listener: asyncio.Task[None] | None = None
        self._progress: dict[uuid.UUID, _Progress] = {}
        self._progress_saver: asyncio.Task[None] | None = None
        self.total_timeout_s = float(settings.generation_timeout_seconds)
        self.request_timeout_s = min(MAX_REQUEST_TIMEOUT_SECONDS, self.total_timeout_s)
        self.connect_timeout_s = min(MAX_CONNECT_TIMEOUT_SECONDS, self.total_timeout_s)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        # Shared by the Ollama providers; every connection passes the URL policy (DNS rebinding).
        self._http = ProviderHttpxClient(
            policy_from_settings(self.settings), timeout=None, limits=httpx.Limits(max_connections=1000)
        )
        if isinstance(self.event_log, InProcessEventLog):
            self.event_log.start()
        ready = asyncio.Event()
        self._stop_listener = asyncio.create_task(self._listen_for_stops(ready), name="chat-stop-listener")
        await ready.wait()
        self._progress_saver = asyncio.create_task(self._save_progress_forever(), name="chat-progress-saver")
        async with self.sessionmaker.begin() as session:
            # Without Redis this process is the only API process: any unfinished answer in
            # the database lost its task when the previous process stopped.
            before = None if not self.settings.redis_url else abandoned_before(self.settings)
            failed = await repository.fail_abandoned_generations(session, before, ABANDONED_ERROR)
        if failed:
            logger.info("marked %d unfinished answers from a previous run as failed", failed)

    async def close(self) -> None:
        tasks = list(self.tasks.items())
        for message_id, task in tasks:
            self._stop_reasons.setdefault(message_id, STOPPED_BY_SHUTDOWN)
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait([task for _, task in tasks], timeout=SHUTDOWN_GRACE_SECONDS)
            if pending:
                logger.warning("%d generation tasks did not finish within the shutdown grace", len(pending))
        for background in (self._stop_listener, self._progress_saver):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await background
        for provider in [*self._providers.values(), *self._retired_providers]:
            with contextlib.suppress(Exception):
                await provider.aclose()
        self._providers.clear()
        if self._http is not None:
            await self._http.aclose()
        await self.event_log.close()

    # --- jobs -------------------------------------------------------------------------

    def submit(self, job: GenerationJob, listener: AnswerListener | None = None) -> None:
        """Run the job; `listener` (the OpenAI-compatible API's response) gets every event
        of the answer in this process, besides the event log and the bus."""
        if listener is not None:
            self._listeners[job.message_id] = listener
        task = asyncio.create_task(self._run(job), name=f"generate-{job.message_id}")
        self.tasks[job.message_id] = task
        self._owners[job.message_id] = job.user_id
        task.add_done_callback(lambda _: self._forget(job.message_id))

    def _forget(self, message_id: uuid.UUID) -> None:
        self.tasks.pop(message_id, None)
        self._owners.pop(message_id, None)
        self._stop_reasons.pop(message_id, None)
        self._listeners.pop(message_id, None)

    def is_generating_for(self, user_id: uuid.UUID) -> bool:
        """Whether this process is generating an answer for the user (stored or not)."""
        return user_id in self._owners.values()

    def owner_of(self, message_id: uuid.UUID) -> uuid.UUID | None:
        """The user whose answer this process is generating, if it is generating it."""
        return self._owners.get(message_id)

    def is_running_here(self, message_id: uuid.UUID) -> bool:
        return message_id in self.tasks

    async def request_stop(self, message_id: uuid.UUID) -> None:
        """Stop a generation wherever it runs: here directly, elsewhere through the bus."""
        if self.cancel_local(message_id):
            return
        await self.bus.publish(STOP_CHANNEL, GenerationStop(message_id))

    def cancel_local(self, message_id: uuid.UUID) -> bool:
        task = self.tasks.get(message_id)
        if task is None or task.done():
            return False
        self._stop_reasons[message_id] = STOPPED_BY_USER
        task.cancel()
        return True

    async def _listen_for_stops(self, ready: asyncio.Event) -> None:
        while True:
            try:
                async with self.bus.subscribe(STOP_CHANNEL) as events:
                    ready.set()
                    async for event in events:
                        if isinstance(event, GenerationStop):
                            self.cancel_local(event.message_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                ready.set()
                logger.exception("chat stop listener failed; resubscribing in 1 s")
                await asyncio.sleep(1.0)

    async def emit(self, message_id: uuid.UUID, event: AnswerEvent, *, persist: bool = True) -> None:
        if persist:
            await self.event_log.append(message_id, event)
            await self.bus.publish(message_channel(message_id), event)
        listener = self._listeners.get(message_id)
        if listener is not None:
            listener(event)

    def _provider_for(self, config: ProviderConfig) -> LLMProvider:
        # One provider per distinct configuration, reused: its connection pool stays warm.
        provider = self._providers.get(config)
        if provider is None:
            if len(self._providers) >= 256:
                self._retired_providers.extend(self._providers.values())
                self._providers.clear()
            provider = build_provider(config, http_client=self._http)
            self._providers[config] = provider
        return provider

    def _provider_config(self, model: RagModel) -> ProviderConfig:
        api_key = self.cipher.decrypt(model.api_key_encrypted) if model.api_key_encrypted else None
        return provider_config(
            model,
            api_key,
            url_policy=policy_from_settings(self.settings),
            request_timeout_s=self.request_timeout_s,
            connect_timeout_s=self.connect_timeout_s,
        )

    # --- the generation itself ----------------------------------------------------------

    async def _prepare(
        self, job: GenerationJob, timings: dict[str, Any]
    ) -> tuple[GenerationRequest, list[dict[str, Any]], ProviderConfig, Evidence]:
        async with self.sessionmaker() as session:
            model = await session.get(RagModel, job.model_id)
            if model is None:
                raise LLMProviderErrorLike("This chat's model no longer exists.")
            config = self._provider_config(model)
            rows = (
                await repository.latest_messages(session, job.chat_session_id, HISTORY_MESSAGES)
                if job.history is None
                else []
            )
            retrieval_started = time.perf_counter()
            passages: list[Any] = []
            # Skipping retrieval when there is nothing to search spares the query embedding.
            if await repository.has_searchable_chunks(session, model.id, job.chat_session_id):
                user = await session.get(User, job.user_id)
                if user is not None:
                    passages = await _retrieve(
                        session, user, model, job.chat_session_id, job.question, self.embedding
                    )
            # The question's words weighed by how rare they are in what was searched.
            term_weights = (
                await question_term_weights(
                    session, job.question[:QUESTION_SEARCHED_CHARACTERS], [model.id, job.chat_session_id]
                )
                if passages
                else None
            )
            timings["retrieval_ms"] = round((time.perf_counter() - retrieval_started) * 1000, 2)
            kept_files = await repository.kept_file_document_ids(
                session, list({passage.document_id for passage in passages})
            )
        context = [
            ContextPassage(
                number=number,
                document_title=passage.document_title,
                text=passage.text,
                location_label=location_label(
                    passage.page_start, passage.page_end, passage.row_start, passage.row_end, passage.location
                ),
                score=float(passage.score),
                similarity=passage.similarity,
                row_start=passage.row_start,
                row_end=passage.row_end,
                row_noun=row_noun(passage.location),
            )
            for number, passage in enumerate(passages, start=1)
        ]
        history = (
            _history(rows, job.question_message_id)
            if job.history is None
            else list(job.history[-HISTORY_MESSAGES:])
        )

        def build(evidence: str | None) -> GenerationRequest:
            return build_generation_request(
                model.system_prompt,
                context,
                history,
                job.question,
                model.context_window_tokens,
                model.max_output_tokens,
                evidence=evidence,
                term_weights=term_weights,
            )

        # Evidence is judged on the passages the model will see, and told to it (rag/prompt.py).
        request = build(None)
        assessment = assess(job.question, request.passages, term_weights)
        request = build(assessment.evidence.value)
        timings["evidence"] = assessment.features()
        seen = {passage.number for passage in request.passages}
        sources: list[dict[str, Any]] = []
        for number, passage in enumerate(passages, start=1):
            if number not in seen:
                continue
            where = source_location(
                passage.location, passage.page_start, passage.page_end, passage.row_start, passage.row_end
            )
            url = None
            if passage.document_id in kept_files:
                url = f"/files/documents/{passage.document_id}"
                # A PDF viewer's anchor: slides and Word pages are not PDF pages.
                if where["kind"] == "PAGE" and where["page"] is not None:
                    url += f"#page={where['page']}"
            sources.append(
                {
                    "number": number,
                    "chunk_id": passage.chunk_id,
                    "document_id": str(passage.document_id),
                    "document_title": passage.document_title,
                    "page_start": passage.page_start,
                    "page_end": passage.page_end,
                    "row_start": passage.row_start,
                    "row_end": passage.row_end,
                    "location_label": where["label"],
                    "location": where,
                    "snippet": _snippet(passage.text),
                    "preview": preview(passage.text),
                    "table": csv_source_table(passage.text, passage.row_start, passage.row_end),
                    "score": round(float(passage.score), 6),
                    "url": url,
                    "cited_order": None,
                }
            )
        return request, sources, config, assessment.evidence

    async def _run(self, job: GenerationJob) -> None:
        message_id = job.message_id
        progress = _Progress()
        timings: dict[str, Any] = {}
        sources: list[dict[str, Any]] = []
        usage: Usage | None = None
        truncated = False
        evidence: Evidence | None = None
        seq = 0
        first_token_at: float | None = None
        status = MessageStatus.COMPLETE
        error: str | None = None
        try:
            async with asyncio.timeout(self.total_timeout_s):
                request, sources, config, evidence = await self._prepare(job, timings)
                seq += 1
                await self.emit(message_id, AnswerSources(seq, tuple(sources)), persist=job.persist)
                if job.persist:
                    self._progress[message_id] = progress
                provider = self._provider_for(config)
                stream: AsyncIterator[Any] = provider.stream(request)
                async for item in stream:
                    if isinstance(item, TokenDelta):
                        if not item.text:
                            continue
                        if first_token_at is None:
                            first_token_at = time.perf_counter()
                        progress.parts.append(item.text)
                        seq += 1
                        await self.emit(message_id, AnswerToken(seq, item.text), persist=job.persist)
                    elif isinstance(item, Usage):
                        usage = item
                    elif isinstance(item, Finish):
                        truncated = item.truncated
        except LLMProviderError as failure:
            status, error = MessageStatus.FAILED, await self._provider_failure_message(job, failure)
        except LLMProviderErrorLike as failure:
            status, error = MessageStatus.FAILED, str(failure)
        except ApiKeyDecryptionError as failure:
            status, error = MessageStatus.FAILED, await self._provider_failure_message(job, str(failure))
        except TimeoutError:
            status = MessageStatus.FAILED
            error = (
                f"The answer took longer than {self.total_timeout_s:g} seconds and was cut off; "
                "the partial answer is kept."
            )
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if self._stop_reasons.get(message_id) == STOPPED_BY_USER:
                status = MessageStatus.STOPPED
            else:
                status, error = MessageStatus.FAILED, SHUTDOWN_ERROR
        except Exception:
            reference = uuid.uuid4().hex[:12]
            logger.exception("generation of message %s failed (reference %s)", message_id, reference)
            status = MessageStatus.FAILED
            error = f"Something went wrong while generating the answer (reference {reference})."
        finally:
            self._progress.pop(message_id, None)
        await self._finish(
            job, seq, progress, sources, usage, timings, first_token_at, status, error, truncated, evidence
        )

    async def _provider_failure_message(self, job: GenerationJob, failure: LLMProviderError | str) -> str:
        """The failure's detail names the provider's URL (admin-only) and quotes its answer:
        it goes to the log under a reference, and into the answer only when the asker is an
        administrator. Everybody else reads a generic sentence with the reference."""
        reference = uuid.uuid4().hex[:12]
        detail = failure.user_message if isinstance(failure, LLMProviderError) else failure
        logger.warning(
            "the provider of model %s failed on message %s (reference %s): %s",
            job.model_id,
            job.message_id,
            reference,
            detail,
        )
        try:
            async with self.sessionmaker() as session:
                role = await session.scalar(select(User.role).where(User.id == job.user_id))
        except Exception:
            logger.warning("could not read the role of user %s", job.user_id, exc_info=True)
            role = None
        if role in (Role.ADMIN, Role.SUPERADMIN):
            return detailed_failure_message(detail, reference)
        return public_failure_message(failure if isinstance(failure, LLMProviderError) else None, reference)

    async def _finish(
        self,
        job: GenerationJob,
        seq: int,
        progress: _Progress,
        sources: list[dict[str, Any]],
        usage: Usage | None,
        timings: dict[str, Any],
        first_token_at: float | None,
        status: MessageStatus,
        error: str | None,
        truncated: bool = False,
        evidence: Evidence | None = None,
    ) -> None:
        valid_numbers = {int(source["number"]) for source in sources}
        text, cited = extract_citations(progress.text, valid_numbers)
        order = {number: index for index, number in enumerate(cited)}
        for source in sources:
            source["cited_order"] = order.get(int(source["number"]))
        finished_at = time.perf_counter()
        if first_token_at is not None:
            timings["time_to_first_token_ms"] = round((first_token_at - job.enqueued_at) * 1000, 2)
        timings["total_ms"] = round((finished_at - job.enqueued_at) * 1000, 2)
        usage_dict = _usage_dict(usage, text)
        try:
            async with self.sessionmaker.begin() as session:
                if job.persist:
                    await repository.save_result(
                        session,
                        job.message_id,
                        content=text,
                        status=status,
                        sources=sources,
                        error=error,
                        token_usage=usage_dict,
                        timings=timings,
                        truncated=truncated,
                        evidence=evidence.value if evidence is not None else None,
                    )
                # The user's token quota counts what the provider reported, whatever the
                # answer's status (a stopped answer's tokens were spent too), stored or not.
                # In a savepoint: a failure here (the user deleted meanwhile) keeps the answer.
                if any(quota_service.answer_tokens(usage_dict)):
                    try:
                        async with session.begin_nested():
                            await quota_service.record_answer_tokens(
                                session, job.user_id, job.model_id, usage_dict
                            )
                    except Exception:
                        logger.warning(
                            "could not count the tokens of message %s", job.message_id, exc_info=True
                        )
        except Exception:
            logger.exception("could not save the answer of message %s", job.message_id)
        final: AnswerDone | AnswerFailed
        if status is MessageStatus.FAILED:
            final = AnswerFailed(seq + 1, message=error or "", text=text, status=status)
        else:
            final = AnswerDone(
                seq + 1,
                status=status,
                text=text,
                citations=tuple(cited),
                usage=usage_dict,
                timings=timings,
                truncated=truncated,
                evidence=evidence.value if evidence is not None else None,
            )
        try:
            await self.emit(job.message_id, final, persist=job.persist)
        except Exception:
            logger.exception("could not publish the end of message %s", job.message_id)

    async def _save_progress_forever(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SAVE_SECONDS)
            await self.save_progress_now()

    async def save_progress_now(self) -> None:
        """Save the text so far of every running answer that grew since its last save."""
        dirty = [
            (message_id, progress, len(progress.parts))
            for message_id, progress in self._progress.items()
            if len(progress.parts) != progress.saved_parts
        ]
        if not dirty:
            return
        try:
            async with self.sessionmaker.begin() as session:
                await repository.save_progress_many(
                    session,
                    [(message_id, "".join(progress.parts[:count])) for message_id, progress, count in dirty],
                )
        except Exception:
            logger.warning("could not save the progress of %d answers", len(dirty), exc_info=True)
            return
        for _message_id, progress, count in dirty:
            progress.saved_parts = count


def _usage_dict(usage: Usage | None, text: str) -> dict[str, Any] | None:
    """Token counts as reported, a count the server did not report being unknown (None), never 0:
    some servers send zeros when they did not count (a prompt is never 0 tokens, nor an answer
    that has text)."""
    if usage is None:
        return None
    prompt = usage.prompt_tokens if usage.prompt_tokens else None
    completion = usage.completion_tokens if usage.completion_tokens or not text else None
    if prompt is None and completion is None:
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion}


class LLMProviderErrorLike(Exception):
    """A failure before the provider was called, told to the user as is."""


@contextlib.asynccontextmanager
async def running_generation(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    cipher: ApiKeyCipher,
) -> AsyncIterator[GenerationManager]:
    """The process's generation manager, started (abandoned answers failed) and closed at exit."""
    manager = GenerationManager(settings, sessionmaker, bus, cipher)
    await manager.start()
    try:
        yield manager
    finally:
        await manager.close()
