"""Chat queries, mutations and the messageStream subscription: thin — parse, check, call, map."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import strawberry
from strawberry.file_uploads import Upload

from gql_server.access.watch import AccessLost, watch_access
from gql_server.chat import attachments, repository, service
from gql_server.chat.event_log import message_channel
from gql_server.chat.generation import ABANDONED_ERROR, GenerationManager, abandoned_before
from gql_server.chat.service import SentMessage
from gql_server.chat.types import (
    AttachFileResult,
    ChatMessage,
    ChatMessageResult,
    ChatSession,
    ChatSessionDeleted,
    ChatSessionResult,
    DeleteChatSessionResult,
    FeedbackValue,
    MessageSent,
    MessagesResult,
    MessageStreamEvent,
    RenameChatSessionResult,
    ResumeChatSessionResult,
    SendMessageResult,
    SetMessageFeedbackResult,
    StartChatSessionResult,
    StopGenerationResult,
    StopRequested,
    citations_of,
    stream_event_of,
)
from gql_server.context import Info
from gql_server.db import models
from gql_server.documents.service import remove_deleted_files
from gql_server.documents.types import Document, DocumentUploaded
from gql_server.errors import NotFound, maps_domain_errors
from gql_server.events.kinds import (
    ANSWER_EVENT_TYPES,
    AnswerDone,
    AnswerEvent,
    AnswerFailed,
    AnswerSources,
    AnswerToken,
    is_terminal,
)
from gql_server.exceptions import NotFoundError
from gql_server.kit.field_permissions import signed_in
from gql_server.kit.page import Page, build_page, parse_page_arguments

# With no event for this long, the stream checks the log and the stored message itself
# (the process generating the answer may have died).
SILENCE_CHECK_SECONDS = 10.0


def _sent(result: SentMessage) -> MessageSent:
    return MessageSent(
        user_message=ChatMessage.from_row(result.user_message) if result.user_message else None,
        assistant_message=ChatMessage.from_row(result.assistant_message),
        message_id=result.assistant_message.id,
    )


@strawberry.type
class ChatQuery:
    @strawberry.field(description="Your chat sessions, most recently used first.", extensions=signed_in())
    async def chat_sessions(
        self,
        info: Info,
        model_id: uuid.UUID | None = None,
        first: int = 20,
        offset: int | None = None,
        after: str | None = None,
        include_ended: bool = True,
    ) -> Page[ChatSession]:
        user = info.context.require_user()
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await repository.list_sessions(
                session,
                user.id,
                model_id=model_id,
                include_ended=include_ended,
                first=request.limit,
                offset=request.offset,
                readable_by=user,
            )
        return build_page([ChatSession.from_row(row) for row in rows], total, request)

    @strawberry.field(description="One of your chat sessions.", extensions=signed_in())
    @maps_domain_errors
    async def chat_session(self, info: Info, id: uuid.UUID) -> ChatSessionResult:
        user = info.context.require_user()
        async with info.context.sessionmaker() as session:
            row = await repository.get_owned_session(session, user.id, id, readable_by=user)
        if row is None:
            raise NotFoundError(service.SESSION_NOT_FOUND)
        return ChatSession.from_row(row)

    @strawberry.field(
        description="A page of a session's messages, going back in time: the newest `first` messages, "
        "or those just before the message `before`, skipping `offset` more (or continuing `after` a "
        "page's endCursor). Items are oldest first; `hasNextPage` says whether older ones exist.",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def messages(
        self,
        info: Info,
        session_id: uuid.UUID,
        first: int = 50,
        before: uuid.UUID | None = None,
        offset: int | None = None,
        after: str | None = None,
    ) -> MessagesResult:
        user = info.context.require_user()
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            chat_session = await repository.get_owned_session(session, user.id, session_id, readable_by=user)
            if chat_session is None:
                raise NotFoundError(service.SESSION_NOT_FOUND)
            cursor = None
            if before is not None:
                cursor = await repository.get_owned_message(session, user.id, before)
                if cursor is None or cursor.session_id != session_id:
                    raise NotFoundError(service.MESSAGE_NOT_FOUND)
            rows, total = await repository.list_messages(
                session, session_id, first=request.limit, offset=request.offset, before=cursor
            )
        return build_page([ChatMessage.from_row(row) for row in rows], total, request)

    @strawberry.field(description="One of your messages.", extensions=signed_in())
    @maps_domain_errors
    async def chat_message(self, info: Info, id: uuid.UUID) -> ChatMessageResult:
        user = info.context.require_user()
        async with info.context.sessionmaker() as session:
            row = await repository.get_owned_message(session, user.id, id, readable_by=user)
        if row is None:
            raise NotFoundError(service.MESSAGE_NOT_FOUND)
        return ChatMessage.from_row(row)


@strawberry.type
class ChatMutation:
    @strawberry.mutation(
        description="Start a chat with a model. Your previous active chat with that model ends "
        "(it stays in your history; resumeChatSession continues it).",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def start_chat_session(
        self, info: Info, model_id: uuid.UUID, title: str | None = None
    ) -> StartChatSessionResult:
        user = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            row = await service.start_session(session, user, model_id, title)
        return ChatSession.from_row(row)

    @strawberry.mutation(
        description="Continue one of your chats: it becomes your active chat with its model and the "
        "active one ends (both keep their history). Sending a message in an ended chat does the same.",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def resume_chat_session(self, info: Info, id: uuid.UUID) -> ResumeChatSessionResult:
        user = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            row = await service.resume_session(session, user, id)
        return ChatSession.from_row(row)

    @strawberry.mutation(description="Rename one of your chat sessions.", extensions=signed_in())
    @maps_domain_errors
    async def rename_chat_session(self, info: Info, id: uuid.UUID, title: str) -> RenameChatSessionResult:
        user = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            row = await service.rename_session(session, user, id, title)
        return ChatSession.from_row(row)

    @strawberry.mutation(
        description="Delete one of your chat sessions with its messages and attached files.",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def delete_chat_session(self, info: Info, id: uuid.UUID) -> DeleteChatSessionResult:
        user = info.context.require_user()
        manager = info.context.state.generation
        async with info.context.sessionmaker.begin() as session:
            running = await repository.generation_in_flight(
                session, user.id, abandoned_before(info.context.state.settings)
            )
            outbox_ids = await service.delete_session(session, info.context.state.settings, user, id)
        await remove_deleted_files(info.context.sessionmaker, outbox_ids)
        if running is not None and running.session_id == id:
            await manager.request_stop(running.id)
        return ChatSessionDeleted(id=id)

    @strawberry.mutation(
        description="Ask a question in a session. Returns at once with the answer's message id; "
        "subscribe to messageStream(messageId) to receive the answer. In an ended session this "
        "continues it first (as resumeChatSession).",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def send_message(self, info: Info, session_id: uuid.UUID, content: str) -> SendMessageResult:
        user = info.context.require_user()
        state = info.context.state
        manager = state.generation
        async with state.sessionmaker.begin() as session:
            sent = await service.send_message(session, state, user, session_id, content)
        manager.submit(sent.job)
        return _sent(sent)

    @strawberry.mutation(
        description="Answer the session's last question again. The previous answer is replaced: "
        "it is deleted and a new answer message (new id) is generated.",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def regenerate_message(self, info: Info, message_id: uuid.UUID) -> SendMessageResult:
        user = info.context.require_user()
        state = info.context.state
        manager = state.generation
        async with state.sessionmaker.begin() as session:
            sent = await service.regenerate(session, state, user, message_id)
        manager.submit(sent.job)
        return _sent(sent)

    @strawberry.mutation(
        description="Thumbs up or down on an answer (NONE clears it).", extensions=signed_in()
    )
    @maps_domain_errors
    async def set_message_feedback(
        self, info: Info, message_id: uuid.UUID, value: FeedbackValue
    ) -> SetMessageFeedbackResult:
        user = info.context.require_user()
        stored = {FeedbackValue.UP: 1, FeedbackValue.DOWN: -1, FeedbackValue.NONE: None}[value]
        async with info.context.sessionmaker.begin() as session:
            row = await service.set_feedback(session, user, message_id, stored)
        return ChatMessage.from_row(row)

    @strawberry.mutation(
        description="Attach a file (PDF, CSV, text) to one of your chat sessions (GraphQL multipart "
        "request). It is ingested in the background (follow it with documentProgress) and used to "
        "answer this session's next questions only; it is deleted with the session. StorageQuotaExceeded when "
        "your attachments would total more than ATTACHMENT_QUOTA_MB_PER_USER.",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def attach_file(
        self, info: Info, session_id: uuid.UUID, file: Upload, title: str | None = None
    ) -> AttachFileResult:
        user = await info.context.require_current_user()
        row = await attachments.attach_file(info.context.state, user, session_id, file, title)
        return DocumentUploaded(document=Document.from_row(row))

    @strawberry.mutation(
        description="Stop an answer being generated; the text so far is kept with status STOPPED.",
        extensions=signed_in(),
    )
    @maps_domain_errors
    async def stop_generation(self, info: Info, message_id: uuid.UUID) -> StopGenerationResult:
        user = info.context.require_user()
        state = info.context.state
        manager = state.generation
        async with state.sessionmaker.begin() as session:
            message = await repository.get_owned_message(session, user.id, message_id, readable_by=user)
            if message is None or message.role is not models.MessageRole.ASSISTANT:
                raise NotFoundError(service.MESSAGE_NOT_FOUND)
            if message.status not in repository.IN_FLIGHT_STATUSES:
                return StopRequested(message_id=message_id, already_finished=True)
            if manager.is_running_here(message_id):
                manager.cancel_local(message_id)
                return StopRequested(message_id=message_id, already_finished=False)
            if not state.settings.redis_url or message.created_at < abandoned_before(state.settings):
                # No process can be running it (one API process without Redis, or too old).
                await repository.save_result(
                    session,
                    message_id,
                    content=message.content,
                    status=models.MessageStatus.STOPPED,
                    sources=message.sources,
                    error=None,
                    token_usage=message.token_usage,
                    timings=message.timings,
                )
                return StopRequested(message_id=message_id, already_finished=False)
        await manager.request_stop(message_id)
        return StopRequested(message_id=message_id, already_finished=False)


def _synthesised(row: models.ChatMessage, after_seq: int, last_seq: int) -> list[AnswerEvent]:
    """SOURCES + DONE (or ERROR) rebuilt from a finished message whose log has expired."""
    events: list[AnswerEvent] = []
    if after_seq < 1 and last_seq < 1:
        events.append(AnswerSources(1, tuple(row.sources or [])))
    seq = max(last_seq, after_seq, 1) + 1
    if row.status is models.MessageStatus.FAILED:
        events.append(AnswerFailed(seq, message=row.error or "", text=row.content))
    else:
        events.append(
            AnswerDone(
                seq,
                status=row.status,
                text=row.content,
                citations=tuple(citations_of(row.sources or [])),
                usage=row.token_usage,
                timings=row.timings,
            )
        )
    return events


@strawberry.type
class ChatSubscription:
    @strawberry.subscription(
        description="The events of one of your answers: SOURCES, TOKEN..., then DONE or ERROR. "
        "Replays every event after `afterSeq` first, so a reconnecting client continues where it "
        "left off; a finished answer replays (or is summarised as SOURCES + DONE) and the stream ends.",
        extensions=signed_in(),
    )
    async def message_stream(
        self,
        info: Info,
        message_id: uuid.UUID,
        after_seq: int = 0,
        coalesce_tokens: Annotated[
            bool,
            strawberry.argument(
                description="Merge TOKEN events that are already waiting (in a replay, or live when "
                "this client is behind) into one TokenEvent whose `delta` is their concatenated text "
                "and whose `seq` is the LAST merged seq; seq numbers then skip the merged ones. "
                "`afterSeq` stays exact: resuming after a merged event's seq continues with the "
                "next token. Default false: one event per token, seq numbers contiguous."
            ),
        ] = False,
    ) -> AsyncIterator[MessageStreamEvent]:
        state = info.context.state
        manager = state.generation
        sessionmaker = state.sessionmaker
        after_seq = max(0, after_seq)

        async def stored_message() -> models.ChatMessage | None:
            async with sessionmaker() as session:
                return await repository.get_owned_message(session, user.id, message_id)

        async def still_readable(session: Any, fresh: models.User) -> bool:
            return await repository.get_readable_answer_model(session, fresh, message_id) is not None

        async def answer() -> AsyncIterator[MessageStreamEvent]:
            last_seq = after_seq
            relay: asyncio.Queue[AnswerEvent] = asyncio.Queue()

            async with state.bus.subscribe(message_channel(message_id)) as live:

                async def forward() -> None:
                    async for event in live:
                        if isinstance(event, ANSWER_EVENT_TYPES):
                            relay.put_nowait(event)

                forwarder = asyncio.create_task(forward())
                try:
                    # Subscribed first, then the log: whatever is published from now on is
                    # either in what we read or arrives live; seq numbers drop the overlap.
                    replay = await manager.event_log.read_after(message_id, after_seq)
                    if coalesce_tokens:
                        replay = coalesce_token_events(replay)
                    for event in replay:
                        if event.seq <= last_seq:
                            continue
                        last_seq = event.seq
                        yield stream_event_of(message_id, event)
                        if is_terminal(event):
                            return
                    if not manager.is_running_here(message_id):
                        finished = await _finished_without_log(
                            manager, stored_message, message_id, after_seq, last_seq
                        )
                        if finished is not None:
                            for event in finished:
                                yield stream_event_of(message_id, event)
                            return
                    held: AnswerEvent | None = None
                    while True:
                        try:
                            if held is not None:
                                event, held = held, None
                            elif not relay.empty():
                                event = relay.get_nowait()
                            else:
                                # asyncio.timeout, not wait_for: wait_for wraps the get() in a new
                                # Task on every event (Python 3.11).
                                async with asyncio.timeout(SILENCE_CHECK_SECONDS):
                                    event = await relay.get()
                        except TimeoutError:
                            if manager.is_running_here(message_id):
                                continue
                            finished = await _finished_without_log(
                                manager, stored_message, message_id, after_seq, last_seq
                            )
                            if finished is None:
                                continue
                            for event in finished:
                                if event.seq > last_seq or is_terminal(event):
                                    yield stream_event_of(message_id, event)
                            return
                        seq = event.seq
                        if seq <= last_seq:
                            continue
                        if seq > last_seq + 1:
                            # A gap (a slow consumer's queue overflowed): fill it from the log.
                            for missed in await manager.event_log.read_after(message_id, last_seq):
                                if missed.seq <= last_seq:
                                    continue
                                last_seq = missed.seq
                                yield stream_event_of(message_id, missed)
                                if is_terminal(missed):
                                    return
                            continue
                        if coalesce_tokens and isinstance(event, AnswerToken) and not relay.empty():
                            # Behind: one GraphQL execution and one frame for everything waiting.
                            event, held = _merge_waiting_tokens(event, relay)
                        last_seq = event.seq
                        yield stream_event_of(message_id, event)
                        if is_terminal(event):
                            return
                finally:
                    forwarder.cancel()
                    try:
                        await forwarder
                    except asyncio.CancelledError:
                        # The forwarder's own cancellation is expected; ours (the client
                        # completed the operation meanwhile) must propagate, or the stream
                        # would end as if finished and strawberry would complete it twice.
                        current = asyncio.current_task()
                        if current is not None and current.cancelling():
                            raise

        # Watch first, then check: an access change committed after the check is seen.
        async with watch_access(
            state.bus,
            sessionmaker,
            info.context.require_user(),
            personal_token=info.context.personal_token,
            check=still_readable,
            lost_message=service.MESSAGE_NOT_FOUND,
        ) as watch:
            user = await info.context.require_current_user()
            async with sessionmaker() as session:
                model_id = await repository.get_readable_answer_model(session, user, message_id)
            if model_id is None:
                yield NotFound(message=service.MESSAGE_NOT_FOUND)
                return
            watch.watch_model(model_id)
            try:
                async for event in watch.guard(answer()):
                    yield event
            except AccessLost as lost:
                if lost.account:  # later operations on this socket are refused too
                    info.context.user = None
                    info.context.auth_error = lost.message
                if lost.code != "NOT_FOUND":
                    raise lost.as_graphql_error() from None
                # The chat is hidden once its model is not readable (see README): the stream
                # ends the way it would for a message that does not exist.
                yield NotFound(message=service.MESSAGE_NOT_FOUND)


def coalesce_token_events(events: list[AnswerEvent]) -> list[AnswerEvent]:
    """Runs of consecutive TOKEN events (contiguous seqs) → one TOKEN with the last seq."""
    merged: list[AnswerEvent] = []
    for event in events:
        previous = merged[-1] if merged else None
        if (
            isinstance(previous, AnswerToken)
            and isinstance(event, AnswerToken)
            and event.seq == previous.seq + 1
        ):
            merged[-1] = AnswerToken(event.seq, previous.delta + event.delta)
        else:
            merged.append(event)
    return merged


def _merge_waiting_tokens(
    first: AnswerToken, relay: asyncio.Queue[AnswerEvent]
) -> tuple[AnswerToken, AnswerEvent | None]:
    """`first` plus the contiguous TOKENs already queued; returns it and the event that ended the run."""
    parts = [first.delta]
    last = first.seq
    while not relay.empty():
        following = relay.get_nowait()
        if isinstance(following, AnswerToken) and following.seq == last + 1:
            parts.append(following.delta)
            last = following.seq
            continue
        return dataclasses.replace(first, seq=last, delta="".join(parts)), following
    return dataclasses.replace(first, seq=last, delta="".join(parts)), None


async def _finished_without_log(
    manager: GenerationManager,
    stored_message: Callable[[], Awaitable[models.ChatMessage | None]],
    message_id: uuid.UUID,
    after_seq: int,
    last_seq: int,
) -> list[AnswerEvent] | None:
    """Final events when the answer is over but the live stream cannot say so."""
    row = await stored_message()
    if row is None:
        return [AnswerFailed(last_seq + 1, message="The message was deleted.")]
    if row.status in repository.IN_FLIGHT_STATUSES:
        if row.created_at < abandoned_before(manager.settings):
            return [AnswerFailed(last_seq + 1, message=ABANDONED_ERROR, text=row.content)]
        return None
    # Finished: the log may have got the final event since we read it.
    remaining = [event for event in await manager.event_log.read_after(message_id, last_seq)]
    if remaining and is_terminal(remaining[-1]):
        return remaining
    return _synthesised(row, after_seq, last_seq)
