"""All SQL of the chat domain. Functions take the caller's AsyncSession and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.access.policy import model_is_readable
from gql_server.db.base import utcnow
from gql_server.db.models import (
    ChatMessage,
    ChatSession,
    Document,
    DocumentChunk,
    MessageRole,
    MessageStatus,
    RagModel,
    User,
)

IN_FLIGHT_STATUSES = (MessageStatus.PENDING, MessageStatus.STREAMING)
FINISHED_STATUSES = (MessageStatus.COMPLETE, MessageStatus.STOPPED, MessageStatus.FAILED)


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Serialise a user's session starts and sends across every API process (row lock)."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def get_owned_session(
    session: AsyncSession,
    user_id: uuid.UUID,
    chat_session_id: uuid.UUID,
    *,
    for_update: bool = False,
    readable_by: User | None = None,
) -> ChatSession | None:
    """The user's session; with `readable_by`, only while that user may still read its model
    (a chat holds passages of the model's documents: it is hidden once access is gone)."""
    query = select(ChatSession).where(ChatSession.id == chat_session_id, ChatSession.user_id == user_id)
    if readable_by is not None:
        query = query.where(model_is_readable(readable_by, ChatSession.model_id))
    if for_update:
        query = query.with_for_update(of=ChatSession)
    return (await session.execute(query)).scalar_one_or_none()


async def get_session_for_sending(
    session: AsyncSession, user: User, chat_session_id: uuid.UUID
) -> tuple[ChatSession | None, bool]:
    """The user's session and whether the user may still read its model, in one statement
    that also locks the user's row (as `lock_user`) until the transaction ends."""
    readable = exists().where(RagModel.id == ChatSession.model_id, model_is_readable(user, RagModel.id))
    query = (
        select(ChatSession, readable)
        .join(User, User.id == ChatSession.user_id)
        .where(ChatSession.id == chat_session_id, ChatSession.user_id == user.id)
        .with_for_update(of=User)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None, False
    return row[0], bool(row[1])


async def end_active_sessions(session: AsyncSession, user_id: uuid.UUID, model_id: uuid.UUID) -> None:
    await session.execute(
        update(ChatSession)
        .where(ChatSession.user_id == user_id, ChatSession.model_id == model_id, ChatSession.is_active)
        .values(is_active=False, ended_at=utcnow())
    )


async def create_session(
    session: AsyncSession, user_id: uuid.UUID, model_id: uuid.UUID, title: str
) -> ChatSession:
    chat_session = ChatSession(user_id=user_id, model_id=model_id, title=title, is_active=True)
    session.add(chat_session)
    await session.flush()
    return chat_session


async def list_sessions(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    model_id: uuid.UUID | None,
    include_ended: bool,
    first: int,
    offset: int,
    readable_by: User | None = None,
) -> tuple[Sequence[ChatSession], int]:
    conditions: list[Any] = [ChatSession.user_id == user_id]
    if readable_by is not None:
        conditions.append(model_is_readable(readable_by, ChatSession.model_id))
    if model_id is not None:
        conditions.append(ChatSession.model_id == model_id)
    if not include_ended:
        conditions.append(ChatSession.is_active)
    total = await session.scalar(select(func.count()).select_from(ChatSession).where(*conditions))
    rows = (
        await session.execute(
            select(ChatSession)
            .where(*conditions)
            .order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
            .limit(first)
            .offset(offset)
        )
    ).scalars()
    return list(rows), int(total or 0)


async def get_owned_message(
    session: AsyncSession,
    user_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    for_update: bool = False,
    readable_by: User | None = None,
) -> ChatMessage | None:
    """The user's message; with `readable_by`, only while that user may still read the model
    of its session (see get_owned_session)."""
    query = select(ChatMessage).where(ChatMessage.id == message_id, ChatMessage.user_id == user_id)
    if readable_by is not None:
        query = query.join(ChatSession, ChatSession.id == ChatMessage.session_id).where(
            model_is_readable(readable_by, ChatSession.model_id)
        )
    if for_update:
        query = query.with_for_update(of=ChatMessage)
    return (await session.execute(query)).scalar_one_or_none()


async def get_readable_answer_model(
    session: AsyncSession, user: User, message_id: uuid.UUID
) -> uuid.UUID | None:
    """The model of the user's answer `message_id`, while the user may still read it (else None)."""
    query = (
        select(ChatSession.model_id)
        .join(ChatMessage, ChatMessage.session_id == ChatSession.id)
        .where(
            ChatMessage.id == message_id,
            ChatMessage.user_id == user.id,
            ChatMessage.role == MessageRole.ASSISTANT,
            model_is_readable(user, ChatSession.model_id),
        )
    )
    return await session.scalar(query)


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> ChatMessage | None:
    return await session.get(ChatMessage, message_id)


async def list_messages(
    session: AsyncSession,
    chat_session_id: uuid.UUID,
    *,
    first: int,
    offset: int,
    before: ChatMessage | None,
) -> tuple[list[ChatMessage], int]:
    """The page of `first` messages ending just before `before` (or the newest), oldest
    first, skipping the `offset` newest; and how many messages there are before `before`
    (or in all), so the page can tell whether older ones remain."""
    conditions: list[Any] = [ChatMessage.session_id == chat_session_id]
    if before is not None:
        conditions.append(
            or_(
                ChatMessage.created_at < before.created_at,
                (ChatMessage.created_at == before.created_at) & (ChatMessage.id < before.id),
            )
        )
    total = await session.scalar(select(func.count()).select_from(ChatMessage).where(*conditions))
    rows = list(
        (
            await session.execute(
                select(ChatMessage)
                .where(*conditions)
                .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
                .limit(first)
                .offset(offset)
            )
        ).scalars()
    )
    return list(reversed(rows)), int(total or 0)


async def count_messages(session: AsyncSession, chat_session_id: uuid.UUID) -> int:
    total = await session.scalar(
        select(func.count()).select_from(ChatMessage).where(ChatMessage.session_id == chat_session_id)
    )
    return int(total or 0)


async def generation_in_flight(
    session: AsyncSession, user_id: uuid.UUID, since: datetime
) -> ChatMessage | None:
    """The user's unfinished answer, if one started after `since` (older ones are abandoned)."""
    return (
        await session.execute(
            select(ChatMessage)
            .where(
                ChatMessage.user_id == user_id,
                ChatMessage.role == MessageRole.ASSISTANT,
                ChatMessage.status.in_(IN_FLIGHT_STATUSES),
                ChatMessage.created_at > since,
            )
            .limit(1)
        )
    ).scalar_one_or_none()


def add_message(
    session: AsyncSession,
    chat_session: ChatSession,
    role: MessageRole,
    content: str,
    status: MessageStatus,
    *,
    created_at: datetime | None = None,
) -> ChatMessage:
    message = ChatMessage(
        id=uuid.uuid4(),
        session_id=chat_session.id,
        user_id=chat_session.user_id,
        role=role,
        content=content,
        status=status,
        sources=[],
        created_at=created_at or utcnow(),
    )
    session.add(message)
    return message


async def latest_messages(session: AsyncSession, chat_session_id: uuid.UUID, limit: int) -> list[ChatMessage]:
    """The newest `limit` messages of a session, oldest first."""
    rows = (
        await session.execute(
            select(ChatMessage)
            .where(ChatMessage.session_id == chat_session_id)
            .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
            .limit(limit)
        )
    ).scalars()
    return list(reversed(list(rows)))


async def touch_session(session: AsyncSession, chat_session_id: uuid.UUID) -> None:
    await session.execute(
        update(ChatSession).where(ChatSession.id == chat_session_id).values(updated_at=utcnow())
    )


async def session_documents(session: AsyncSession, chat_session_id: uuid.UUID) -> list[Document]:
    """The files attached in a chat session."""
    rows = await session.execute(select(Document).where(Document.session_id == chat_session_id))
    return list(rows.scalars())


async def delete_session(session: AsyncSession, chat_session: ChatSession) -> None:
    """Delete a session with its messages (attachments are deleted first by the service)."""
    await session.execute(delete(ChatMessage).where(ChatMessage.session_id == chat_session.id))
    await session.execute(delete(ChatSession).where(ChatSession.id == chat_session.id))


async def get_model(session: AsyncSession, model_id: uuid.UUID) -> RagModel | None:
    return await session.get(RagModel, model_id)


async def has_searchable_chunks(
    session: AsyncSession, model_id: uuid.UUID, chat_session_id: uuid.UUID
) -> bool:
    """Whether retrieval can find anything: the model's own chunks or this session's attachments."""
    model_chunks = exists().where(DocumentChunk.model_id == model_id, DocumentChunk.session_id.is_(None))
    session_chunks = exists().where(
        DocumentChunk.model_id == model_id, DocumentChunk.session_id == chat_session_id
    )
    return bool(await session.scalar(select(model_chunks | session_chunks)))


async def kept_file_document_ids(session: AsyncSession, document_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not document_ids:
        return set()
    rows = await session.execute(
        select(Document.id).where(Document.id.in_(document_ids), Document.file_kept.is_(True))
    )
    return set(rows.scalars())


async def save_progress(session: AsyncSession, message_id: uuid.UUID, content: str) -> None:
    await session.execute(
        update(ChatMessage)
        .where(ChatMessage.id == message_id, ChatMessage.status.in_(IN_FLIGHT_STATUSES))
        .values(content=content, status=MessageStatus.STREAMING)
    )


_SAVE_PROGRESS_MANY = text(
    "UPDATE chat_messages SET content = progress.content, status = 'STREAMING' "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:contents AS text[])) AS progress(id, content) "
    "WHERE chat_messages.id = progress.id AND chat_messages.status IN ('PENDING', 'STREAMING')"
)


async def save_progress_many(session: AsyncSession, texts: list[tuple[uuid.UUID, str]]) -> None:
    """`save_progress` for many answers in one statement (finished answers are left alone)."""
    await session.execute(
        _SAVE_PROGRESS_MANY,
        {"ids": [message_id for message_id, _ in texts], "contents": [content for _, content in texts]},
    )


async def save_result(
    session: AsyncSession,
    message_id: uuid.UUID,
    *,
    content: str,
    status: MessageStatus,
    sources: list[dict[str, Any]],
    error: str | None,
    token_usage: dict[str, Any] | None,
    timings: dict[str, Any] | None,
    truncated: bool = False,
    evidence: str | None = None,
) -> None:
    await session.execute(
        update(ChatMessage)
        .where(ChatMessage.id == message_id)
        .values(
            content=content,
            status=status,
            sources=sources,
            error=error,
            token_usage=token_usage,
            timings=timings,
            truncated=truncated,
            evidence=evidence,
            completed_at=utcnow(),
        )
    )


async def fail_abandoned_generations(session: AsyncSession, before: datetime | None, error: str) -> int:
    """Mark unfinished answers as FAILED (all of them, or those started before `before`)."""
    conditions: list[Any] = [
        ChatMessage.role == MessageRole.ASSISTANT,
        ChatMessage.status.in_(IN_FLIGHT_STATUSES),
    ]
    if before is not None:
        conditions.append(ChatMessage.created_at < before)
    result = await session.execute(
        update(ChatMessage)
        .where(*conditions)
        .values(status=MessageStatus.FAILED, error=error, completed_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def documents_of_sessions(
    session: AsyncSession, chat_session_ids: Sequence[uuid.UUID]
) -> list[Document]:
    """The files attached in these chat sessions, oldest first."""
    rows = await session.execute(
        select(Document)
        .where(Document.session_id.in_(chat_session_ids))
        .order_by(Document.created_at, Document.id)
    )
    return list(rows.scalars())
