"""Authorization policies: one place per object kind, used by resolvers, loaders,
retrieval and subscriptions alike.

Model visibility is expressed as SQL (`readable_model_ids`) so that lists and retrieval
filter inside the database — never after the fact in Python.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import (
    ChatSession,
    GroupMembership,
    ModelAccessGrant,
    RagModel,
    Role,
    User,
)


def is_admin(user: User | None) -> bool:
    return user is not None and user.is_active and user.role in (Role.ADMIN, Role.SUPERADMIN)


def is_superadmin(user: User | None) -> bool:
    return user is not None and user.is_active and user.role is Role.SUPERADMIN


def readable_model_ids(user: User) -> Select[tuple[uuid.UUID]]:
    """Ids of the models `user` may chat with and retrieve from.

    Admins may use every model; everyone else needs a grant to them directly or to an
    access group they belong to.
    """
    if is_admin(user):
        return select(RagModel.id)
    direct = select(ModelAccessGrant.model_id).where(ModelAccessGrant.user_id == user.id)
    via_group = select(ModelAccessGrant.model_id).where(
        ModelAccessGrant.group_id.in_(
            select(GroupMembership.group_id).where(GroupMembership.user_id == user.id)
        )
    )
    return direct.union(via_group)  # type: ignore[return-value]


def model_is_readable(user: User, model_id_column: Any) -> ColumnElement[bool]:
    """A WHERE clause: the model in `model_id_column` is readable by `user`."""
    return model_readable_by(model_id_column, user_id=user.id, admin=is_admin(user))


def model_readable_by(model_id_column: Any, *, user_id: Any, admin: bool) -> ColumnElement[bool]:
    """`model_is_readable` for a user id given as a value or as a SQL expression (a bind
    parameter lets retrieval build its statements once per shape: `admin` is the shape)."""
    if admin:
        return true()
    direct = exists().where(ModelAccessGrant.model_id == model_id_column, ModelAccessGrant.user_id == user_id)
    via_group = exists().where(
        ModelAccessGrant.model_id == model_id_column,
        ModelAccessGrant.group_id == GroupMembership.group_id,
        GroupMembership.user_id == user_id,
    )
    return direct | via_group


async def can_read_model(session: AsyncSession, user: User | None, model_id: uuid.UUID) -> bool:
    if user is None or not user.is_active:
        return False
    query = select(RagModel.id).where(RagModel.id == model_id, model_is_readable(user, RagModel.id))
    found = await session.scalar(query)
    return found is not None


def can_manage_models(user: User | None) -> bool:
    """Create/update/delete models, grant access, upload and delete documents."""
    return is_admin(user)


def can_read_chat_session(user: User | None, chat_session: ChatSession) -> bool:
    """Chats are private to their owner — administrators included."""
    return user is not None and user.is_active and chat_session.user_id == user.id


async def can_use_chat_session(session: AsyncSession, user: User | None, chat_session: ChatSession) -> bool:
    """Owner, and still allowed to read the session's model (access can be revoked)."""
    return can_read_chat_session(user, chat_session) and await can_read_model(
        session, user, chat_session.model_id
    )


async def models_granted_to_group(session: AsyncSession, group_id: uuid.UUID) -> list[uuid.UUID]:
    """The models a group's grants open (read before the group is deleted: they go with it)."""
    rows = await session.scalars(
        select(ModelAccessGrant.model_id).where(ModelAccessGrant.group_id == group_id).distinct()
    )
    return list(rows)
