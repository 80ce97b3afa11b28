"""Who may see a document: the model's readers; a chat attachment only its session's owner."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.access.policy import can_manage_models, can_read_model, can_use_chat_session
from gql_server.db.models import Document, User
from gql_server.documents import repository


async def can_read_document(session: AsyncSession, user: User | None, document: Document) -> bool:
    if document.session_id is not None:
        chat_session = await repository.get_chat_session(session, document.session_id)
        return chat_session is not None and await can_use_chat_session(session, user, chat_session)
    return await can_read_model(session, user, document.model_id)


async def can_change_document(session: AsyncSession, user: User | None, document: Document) -> bool:
    """Delete / re-index: administrators; a chat attachment also its session's owner."""
    if document.session_id is not None:
        return await can_read_document(session, user, document)
    return can_manage_models(user)
