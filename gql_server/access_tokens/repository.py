"""SQL for personal access tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import PersonalAccessToken, User


def add_token(session: AsyncSession, token: PersonalAccessToken) -> PersonalAccessToken:
    session.add(token)
    return token


async def count_active_tokens(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> int:
    query = select(func.count()).where(
        PersonalAccessToken.user_id == user_id,
        PersonalAccessToken.revoked_at.is_(None),
        (PersonalAccessToken.expires_at.is_(None)) | (PersonalAccessToken.expires_at > now),
    )
    return int(await session.scalar(query) or 0)


async def list_tokens(
    session: AsyncSession, *, user_id: uuid.UUID | None, include_revoked: bool, limit: int, offset: int
) -> tuple[Sequence[PersonalAccessToken], int]:
    """Newest first; every user's when `user_id` is None."""
    conditions = []
    if user_id is not None:
        conditions.append(PersonalAccessToken.user_id == user_id)
    if not include_revoked:
        conditions.append(PersonalAccessToken.revoked_at.is_(None))
    rows = await session.scalars(
        select(PersonalAccessToken)
        .where(*conditions)
        .order_by(PersonalAccessToken.created_at.desc(), PersonalAccessToken.id)
        .limit(limit)
        .offset(offset)
    )
    total = await session.scalar(select(func.count()).select_from(PersonalAccessToken).where(*conditions))
    return rows.all(), int(total or 0)


async def get_token_for_update(session: AsyncSession, token_id: uuid.UUID) -> PersonalAccessToken | None:
    return await session.scalar(
        select(PersonalAccessToken).where(PersonalAccessToken.id == token_id).with_for_update()
    )


async def get_token(session: AsyncSession, token_id: uuid.UUID) -> PersonalAccessToken | None:
    return await session.get(PersonalAccessToken, token_id, populate_existing=True)


async def get_token_with_user(
    session: AsyncSession, token_hash: str
) -> tuple[PersonalAccessToken, User] | None:
    """The token with this hash and its owner, in one statement (read on every request)."""
    row = (
        await session.execute(
            select(PersonalAccessToken, User)
            .join(User, User.id == PersonalAccessToken.user_id)
            .where(PersonalAccessToken.token_hash == token_hash)
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def mark_used(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(PersonalAccessToken).where(PersonalAccessToken.id == token_id).values(last_used_at=now)
    )
