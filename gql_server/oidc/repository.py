"""SQL for OIDC identities and one-time log-in codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import LoginCode, UserIdentity


async def get_identity(session: AsyncSession, issuer: str, subject: str) -> UserIdentity | None:
    result = await session.execute(
        select(UserIdentity).where(UserIdentity.issuer == issuer, UserIdentity.subject == subject)
    )
    return result.scalar_one_or_none()


async def identity_of_user(session: AsyncSession, user_id: uuid.UUID, issuer: str) -> UserIdentity | None:
    result = await session.execute(
        select(UserIdentity).where(UserIdentity.user_id == user_id, UserIdentity.issuer == issuer)
    )
    return result.scalar_one_or_none()


async def delete_expired_codes(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(LoginCode).where(LoginCode.expires_at <= now))


async def take_code(session: AsyncSession, code_hash: str) -> LoginCode | None:
    """Remove the code and return it: whoever deletes it first is the only one who used it."""
    result = await session.execute(
        delete(LoginCode).where(LoginCode.code_hash == code_hash).returning(LoginCode)
    )
    return result.scalar_one_or_none()
