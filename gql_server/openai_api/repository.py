"""SQL of the OpenAI-compatible API: the chat session an exchange is stored in."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import ChatSession


async def create_ended_session(
    session: AsyncSession, user_id: uuid.UUID, model_id: uuid.UUID, title: str, now: datetime
) -> ChatSession:
    """An ended chat: it is history (listed, readable, continued from the SPA if wanted), and
    it never ends the chat the user has open on that model (one active chat per model)."""
    chat_session = ChatSession(
        user_id=user_id, model_id=model_id, title=title, is_active=False, ended_at=now, updated_at=now
    )
    session.add(chat_session)
    await session.flush()
    return chat_session
