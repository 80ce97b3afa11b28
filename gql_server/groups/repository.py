"""SQL for access groups and their members."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import AccessGroup, GroupMembership, User
from gql_server.kit.pagination import escape_like


async def get_group(
    session: AsyncSession, group_id: uuid.UUID, *, for_update: bool = False
) -> AccessGroup | None:
    return await session.get(AccessGroup, group_id, with_for_update=for_update or None)


async def name_taken(session: AsyncSession, name: str, except_id: uuid.UUID | None = None) -> bool:
    query = select(AccessGroup.id).where(func.lower(AccessGroup.name) == name.lower())
    if except_id is not None:
        query = query.where(AccessGroup.id != except_id)
    return await session.scalar(query) is not None


async def list_groups(
    session: AsyncSession,
    *,
    search: str | None,
    limit: int,
    offset: int,
    group_id: uuid.UUID | None = None,
) -> tuple[Sequence[AccessGroup], int]:
    """Groups by name (the groups list, and the usage view's, which may ask for one group)."""
    conditions = [AccessGroup.id == group_id] if group_id is not None else []
    if search and search.strip():
        conditions.append(AccessGroup.name.ilike(f"%{escape_like(search.strip())}%"))
    rows = await session.scalars(
        select(AccessGroup)
        .where(*conditions)
        .order_by(func.lower(AccessGroup.name), AccessGroup.id)
        .limit(limit)
        .offset(offset)
    )
    total = await session.scalar(select(func.count()).select_from(AccessGroup).where(*conditions))
    return rows.all(), int(total or 0)


async def groups_of_user(session: AsyncSession, user_id: uuid.UUID) -> Sequence[AccessGroup]:
    rows = await session.scalars(
        select(AccessGroup)
        .join(GroupMembership, GroupMembership.group_id == AccessGroup.id)
        .where(GroupMembership.user_id == user_id)
        .order_by(func.lower(AccessGroup.name))
    )
    return rows.all()


async def add_member(session: AsyncSession, group_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """True when the user was not a member yet."""
    result = await session.execute(
        insert(GroupMembership)
        .values(group_id=group_id, user_id=user_id)
        .on_conflict_do_nothing()
        .returning(GroupMembership.user_id)
    )
    return result.first() is not None


async def remove_member(session: AsyncSession, group_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(GroupMembership)
        .where(GroupMembership.group_id == group_id, GroupMembership.user_id == user_id)
        .returning(GroupMembership.user_id)
    )
    return result.first() is not None


async def member_counts(session: AsyncSession, group_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    result = await session.execute(
        select(GroupMembership.group_id, func.count())
        .where(GroupMembership.group_id.in_(group_ids))
        .group_by(GroupMembership.group_id)
    )
    return {row[0]: int(row[1]) for row in result.all()}


async def members_of_groups(
    session: AsyncSession, group_ids: Sequence[uuid.UUID]
) -> Sequence[tuple[uuid.UUID, User]]:
    result = await session.execute(
        select(GroupMembership.group_id, User)
        .join(User, User.id == GroupMembership.user_id)
        .where(GroupMembership.group_id.in_(group_ids))
        .order_by(User.email)
    )
    return [(row[0], row[1]) for row in result.all()]


async def groups_by_ids(session: AsyncSession, group_ids: Sequence[uuid.UUID]) -> Sequence[AccessGroup]:
    return (await session.scalars(select(AccessGroup).where(AccessGroup.id.in_(group_ids)))).all()


async def external_name_taken(
    session: AsyncSession, external_name: str, except_id: uuid.UUID | None = None
) -> bool:
    query = select(AccessGroup.id).where(AccessGroup.external_name == external_name)
    if except_id is not None:
        query = query.where(AccessGroup.id != except_id)
    return await session.scalar(query) is not None


async def synced_groups(session: AsyncSession) -> Sequence[AccessGroup]:
    """Every group that mirrors an IdP group (one user's sync runs under that user's row lock)."""
    rows = await session.scalars(
        select(AccessGroup).where(AccessGroup.external_name.is_not(None)).order_by(AccessGroup.id)
    )
    return rows.all()


async def member_group_ids(session: AsyncSession, user_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.scalars(select(GroupMembership.group_id).where(GroupMembership.user_id == user_id))
    return set(rows.all())


async def mark_synced(session: AsyncSession, group_ids: Sequence[uuid.UUID], at: datetime) -> None:
    if group_ids:
        await session.execute(
            update(AccessGroup).where(AccessGroup.id.in_(group_ids)).values(last_synced_at=at)
        )
