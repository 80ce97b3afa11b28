"""SQL for listing and changing user accounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import Enum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import AccessGroup, GroupMembership, Role, User
from gql_server.kit.pagination import escape_like


class UserOrder(Enum):
    EMAIL_ASC = "EMAIL_ASC"
    EMAIL_DESC = "EMAIL_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    CREATED_AT_DESC = "CREATED_AT_DESC"
    DISPLAY_NAME_ASC = "DISPLAY_NAME_ASC"


_ORDERING: dict[UserOrder, tuple[Any, ...]] = {
    UserOrder.EMAIL_ASC: (User.email.asc(),),
    UserOrder.EMAIL_DESC: (User.email.desc(),),
    UserOrder.CREATED_AT_ASC: (User.created_at.asc(),),
    UserOrder.CREATED_AT_DESC: (User.created_at.desc(),),
    UserOrder.DISPLAY_NAME_ASC: (func.lower(User.display_name).asc(),),
}


async def list_users(
    session: AsyncSession,
    *,
    search: str | None,
    role: Role | None,
    is_active: bool | None,
    order: UserOrder,
    limit: int,
    offset: int,
) -> tuple[Sequence[User], int]:
    conditions = []
    if search and search.strip():
        pattern = f"%{escape_like(search.strip())}%"
        conditions.append(or_(User.email.ilike(pattern), User.display_name.ilike(pattern)))
    if role is not None:
        conditions.append(User.role == role)
    if is_active is not None:
        conditions.append(User.is_active == is_active)
    rows = await session.scalars(
        select(User).where(*conditions).order_by(*_ORDERING[order], User.id).limit(limit).offset(offset)
    )
    total = await session.scalar(select(func.count()).select_from(User).where(*conditions))
    return rows.all(), int(total or 0)


async def get_user_for_update(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id, with_for_update=True, populate_existing=True)


async def users_by_ids(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> Sequence[User]:
    return (await session.scalars(select(User).where(User.id.in_(user_ids)))).all()


async def groups_of_users(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> Sequence[tuple[uuid.UUID, AccessGroup]]:
    result = await session.execute(
        select(GroupMembership.user_id, AccessGroup)
        .join(AccessGroup, AccessGroup.id == GroupMembership.group_id)
        .where(GroupMembership.user_id.in_(user_ids))
        .order_by(func.lower(AccessGroup.name))
    )
    return [(row[0], row[1]) for row in result.all()]
