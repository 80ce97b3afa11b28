"""Business rules of chat. Functions take the request's AsyncSession and never commit.

Who may see what: a chat session and its messages belong to one user; anyone else —
administrators included — gets the same NotFound as for an id that does not exist.
The owner too, once they may no longer read the session's model (revoked grant, group,
demotion, deleted model): the chat holds passages of that model's documents, so it is
hidden — kept, and back when access is — except that its owner may still delete it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.access.policy import can_read_chat_session, can_read_model, can_use_chat_session
from gql_server.chat import repository
from gql_server.chat.generation import GenerationJob, abandoned_before
from gql_server.db.base import utcnow
from gql_server.db.models import ChatMessage, ChatSession, MessageRole, MessageStatus, User
from gql_server.documents import service as document_service
from gql_server.exceptions import GenerationInProgressError, InvalidInputError, NotFoundError
from gql_server.quotas import service as quota_service
from gql_server.settings import Settings
from gql_server.state import AppState

MAX_MESSAGE_BYTES = 32 * 1024
MAX_TITLE_CHARACTERS = 200
DEFAULT_TITLE = "New chat"
AUTO_TITLE_CHARACTERS = 60

SESSION_NOT_FOUND = "Chat session not found."
MESSAGE_NOT_FOUND = "Message not found."


@dataclass
class SentMessage:
    user_message: ChatMessage | None
    assistant_message: ChatMessage
    job: GenerationJob


def validate_title(title: str | None) -> str | None:
    """The title with its white space collapsed; raises InvalidInputError."""
    if title is None:
        return None
    cleaned = " ".join(title.split())
    if not cleaned:
        raise InvalidInputError.of("title", "The title must not be empty.")
    if len(cleaned) > MAX_TITLE_CHARACTERS:
        raise InvalidInputError.of("title", f"The title must be at most {MAX_TITLE_CHARACTERS} characters.")
    return cleaned


def validate_content(content: str) -> None:
    if not content.strip():
        raise InvalidInputError.of("content", "The message is empty: type a question.")
    size = len(content.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise InvalidInputError.of(
            "content",
            f"The message is too long ({size // 1024} KB); the limit is {MAX_MESSAGE_BYTES // 1024} KB. "
            "Attach long texts as a file instead.",
        )


async def start_session(
    session: AsyncSession, user: User, model_id: uuid.UUID, title: str | None
) -> ChatSession:
    cleaned = validate_title(title)
    if not await can_read_model(session, user, model_id):
        raise NotFoundError("Model not found.")
    # The row lock serialises this user's starts; the partial unique index
    # (one active session per user and model) backs the rule up in the database.
    await repository.lock_user(session, user.id)
    await repository.end_active_sessions(session, user.id, model_id)
    return await repository.create_session(session, user.id, model_id, cleaned or DEFAULT_TITLE)


async def resume_session(session: AsyncSession, user: User, chat_session_id: uuid.UUID) -> ChatSession:
    """Make one of the user's chats the active one for its model; the other active one ends.

    Under the user's row lock (as start_session and send_message), so concurrent resumes,
    starts and sends of one user run one after the other and leave exactly one active
    session per model; the partial unique index backs that up.
    """
    await repository.lock_user(session, user.id)
    chat_session = await repository.get_owned_session(
        session, user.id, chat_session_id, for_update=True, readable_by=user
    )
    if chat_session is None:
        raise NotFoundError(SESSION_NOT_FOUND)
    await _make_active(session, chat_session)
    return chat_session


async def _make_active(session: AsyncSession, chat_session: ChatSession) -> None:
    """Call under the user's row lock. History stays as it is; only who is active changes."""
    if chat_session.is_active:
        return
    await repository.end_active_sessions(session, chat_session.user_id, chat_session.model_id)
    chat_session.is_active = True
    chat_session.ended_at = None
    chat_session.updated_at = utcnow()
    await session.flush()


async def rename_session(
    session: AsyncSession, user: User, chat_session_id: uuid.UUID, title: str
) -> ChatSession:
    chat_session = await repository.get_owned_session(
        session, user.id, chat_session_id, for_update=True, readable_by=user
    )
    if chat_session is None:
        raise NotFoundError(SESSION_NOT_FOUND)
    cleaned = validate_title(title)
    chat_session.title = cleaned or DEFAULT_TITLE
    await session.flush()
    return chat_session


async def delete_session(
    session: AsyncSession, settings: Settings, user: User, chat_session_id: uuid.UUID
) -> list[int]:
    """Delete the session, its messages and its attachments (rows, chunks, files).

    Returns the `pending_file_deletions` ids written in this transaction: the files are
    removed after the commit, and by the sweeper if that fails.
    """
    chat_session = await repository.get_owned_session(session, user.id, chat_session_id, for_update=True)
    if chat_session is None:
        raise NotFoundError(SESSION_NOT_FOUND)
    outbox_ids: list[int] = []
    for document in await repository.session_documents(session, chat_session.id):
        outbox_id = await document_service.delete_document(session, settings, document)
        if outbox_id is not None:
            outbox_ids.append(outbox_id)
    await repository.delete_session(session, chat_session)
    return outbox_ids


async def _usable_session(
    session: AsyncSession, user: User, chat_session_id: uuid.UUID
) -> ChatSession | None:
    chat_session = await repository.get_owned_session(session, user.id, chat_session_id)
    if chat_session is None or not await can_use_chat_session(session, user, chat_session):
        return None
    return chat_session


async def _check_no_generation(session: AsyncSession, state: AppState, user: User) -> None:
    # Under the user's row lock, across every API process: at most one answer in flight.
    await repository.lock_user(session, user.id)
    running = await repository.generation_in_flight(session, user.id, abandoned_before(state.settings))
    if running is not None:
        raise GenerationInProgressError(running.id)


async def send_message(
    session: AsyncSession, state: AppState, user: User, chat_session_id: uuid.UUID, content: str
) -> SentMessage:
    """Store the question and a PENDING answer; GenerationInProgressError if one is in flight."""
    validate_content(content)
    # One statement: the session, whether its model is still readable, and the user's row
    # lock that serialises this user's sends across every API process.
    chat_session, readable = await repository.get_session_for_sending(session, user, chat_session_id)
    if chat_session is None or not readable or not can_read_chat_session(user, chat_session):
        raise NotFoundError(SESSION_NOT_FOUND)
    # Before anything is stored, under the user's row lock: UsageQuotaExceededError rolls back.
    await quota_service.reserve_message(session, state.settings, user.id, chat_session.model_id)
    # Sending in an ended chat continues it: it becomes the active one, the other one ends.
    await _make_active(session, chat_session)
    # Under the lock, in a statement of its own (it must see answers committed while we waited).
    running = await repository.generation_in_flight(session, user.id, abandoned_before(state.settings))
    if running is not None:
        raise GenerationInProgressError(running.id)
    now = utcnow()
    question = repository.add_message(
        session, chat_session, MessageRole.USER, content, MessageStatus.COMPLETE, created_at=now
    )
    answer = _pending_answer(session, chat_session, after=now)
    if chat_session.title == DEFAULT_TITLE:
        first_line = " ".join(content.split())
        chat_session.title = (
            first_line
            if len(first_line) <= AUTO_TITLE_CHARACTERS
            else first_line[: AUTO_TITLE_CHARACTERS - 1].rsplit(" ", 1)[0] + "…"
        )
    chat_session.updated_at = now
    await session.flush()
    return SentMessage(
        user_message=question, assistant_message=answer, job=_answer_job(user, chat_session, question, answer)
    )


async def regenerate(
    session: AsyncSession, state: AppState, user: User, message_id: uuid.UUID
) -> SentMessage:
    """Answer the session's last question again.

    `message_id` is the session's last assistant message (or its last user message). The
    previous answer to that question is replaced: deleted, and a new PENDING assistant
    message (with a new id) takes its place.
    """
    # The user's row lock first: whether the chat is active cannot change under us.
    await repository.lock_user(session, user.id)
    target = await repository.get_owned_message(session, user.id, message_id)
    if target is None:
        raise NotFoundError(MESSAGE_NOT_FOUND)
    chat_session = await _usable_session(session, user, target.session_id)
    if chat_session is None:
        raise NotFoundError(MESSAGE_NOT_FOUND)
    if not chat_session.is_active:
        raise InvalidInputError.of(
            "messageId", "This chat has ended because a newer one was started. Continue this chat first."
        )
    # A regenerated answer counts as a message too (it costs a generation).
    await quota_service.reserve_message(session, state.settings, user.id, chat_session.model_id)
    await _check_no_generation(session, state, user)
    rows = await repository.latest_messages(session, chat_session.id, 2)
    question = next((row for row in reversed(rows) if row.role is MessageRole.USER), None)
    if question is None or target.id not in {row.id for row in rows}:
        raise InvalidInputError.of("messageId", "Only the last answer of a chat can be regenerated.")
    for row in rows:
        if row.role is MessageRole.ASSISTANT and row.created_at > question.created_at:
            await session.delete(row)
    answer = _pending_answer(session, chat_session, after=max(utcnow(), question.created_at))
    chat_session.updated_at = utcnow()
    await session.flush()
    return SentMessage(
        user_message=None, assistant_message=answer, job=_answer_job(user, chat_session, question, answer)
    )


async def set_feedback(
    session: AsyncSession, user: User, message_id: uuid.UUID, value: int | None
) -> ChatMessage:
    message = await repository.get_owned_message(
        session, user.id, message_id, for_update=True, readable_by=user
    )
    if message is None:
        raise NotFoundError(MESSAGE_NOT_FOUND)
    if message.role is not MessageRole.ASSISTANT:
        raise InvalidInputError.of("messageId", "Feedback is given on answers, not on your own messages.")
    message.feedback = value
    await session.flush()
    return message


def _pending_answer(session: AsyncSession, chat_session: ChatSession, *, after: datetime) -> ChatMessage:
    """The empty PENDING answer, ordered just after its question (created at `after`)."""
    return repository.add_message(
        session,
        chat_session,
        MessageRole.ASSISTANT,
        "",
        MessageStatus.PENDING,
        created_at=after + timedelta(microseconds=1),
    )


def _answer_job(
    user: User, chat_session: ChatSession, question: ChatMessage, answer: ChatMessage
) -> GenerationJob:
    """The generation of `answer` to `question`, for `user`, with the chat session's model."""
    return GenerationJob(
        message_id=answer.id,
        question_message_id=question.id,
        chat_session_id=chat_session.id,
        user_id=user.id,
        model_id=chat_session.model_id,
        question=question.content,
    )
