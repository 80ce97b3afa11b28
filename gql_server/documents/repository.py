"""All SQL of the documents domain."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import ChatSession, Document, DocumentChunk, DocumentStatus, RagModel, User


async def get_document(
    session: AsyncSession, document_id: uuid.UUID, *, for_update: bool = False
) -> Document | None:
    query = select(Document).where(Document.id == document_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_model(session: AsyncSession, model_id: uuid.UUID) -> RagModel | None:
    return await session.get(RagModel, model_id)


async def get_chat_session(session: AsyncSession, session_id: uuid.UUID) -> ChatSession | None:
    return await session.get(ChatSession, session_id)


async def find_duplicate(
    session: AsyncSession, model_id: uuid.UUID, session_id: uuid.UUID | None, sha256: str
) -> Document | None:
    query = select(Document).where(Document.sha256 == sha256)
    if session_id is None:
        query = query.where(Document.model_id == model_id, Document.session_id.is_(None))
    else:
        query = query.where(Document.session_id == session_id)
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def list_model_documents(
    session: AsyncSession,
    model_id: uuid.UUID,
    *,
    status: DocumentStatus | None,
    first: int,
    offset: int,
) -> tuple[list[Document], int]:
    condition = [Document.model_id == model_id, Document.session_id.is_(None)]
    if status is not None:
        condition.append(Document.status == status)
    total = await session.scalar(select(func.count()).select_from(Document).where(*condition))
    rows = (
        await session.execute(
            select(Document)
            .where(*condition)
            .order_by(Document.created_at.desc(), Document.id)
            .limit(first)
            .offset(offset)
        )
    ).scalars()
    return list(rows), int(total or 0)


async def working_documents_of_model(session: AsyncSession, model_id: uuid.UUID) -> list[Document]:
    working = [s for s in DocumentStatus if s.is_working]
    query = select(Document).where(
        Document.model_id == model_id, Document.session_id.is_(None), Document.status.in_(working)
    )
    return list((await session.execute(query.order_by(Document.created_at))).scalars())


async def working_document_ids(session: AsyncSession) -> list[uuid.UUID]:
    working = [s for s in DocumentStatus if s.is_working]
    query = select(Document.id).where(Document.status.in_(working)).order_by(Document.created_at)
    return list((await session.execute(query)).scalars())


async def delete_chunks(session: AsyncSession, document: Document) -> None:
    # model_id prunes the statement to the model's chunk partition.
    await session.execute(
        delete(DocumentChunk).where(
            DocumentChunk.model_id == document.model_id, DocumentChunk.document_id == document.id
        )
    )


async def lock_user_for_attachments(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Serialise one user's attachment uploads until the caller's transaction ends.
    FOR NO KEY UPDATE: rows that merely reference the user (their FK check takes KEY
    SHARE) are not held up."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def attachment_bytes_of_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Bytes of every file attached in the user's chat sessions, whatever its status."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Document.size_bytes), 0))
        .join(ChatSession, ChatSession.id == Document.session_id)
        .where(ChatSession.user_id == user_id)
    )
    return int(total or 0)
