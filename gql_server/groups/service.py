"""Access groups: create, rename, delete, membership. Administrators only; services never commit."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.audit import service as audit
from gql_server.db.models import AccessGroup, User
from gql_server.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    text_problems,
)
from gql_server.groups import repository
from gql_server.users import repository as users_repository

NAME_MAX = 120
DESCRIPTION_MAX = 2000


def _check_texts(name: str | None, description: str | None) -> str | None:
    problems = text_problems({"name": (name, NAME_MAX), "description": (description, DESCRIPTION_MAX)})
    cleaned = name.strip() if name is not None else None
    if cleaned is not None and not cleaned:
        problems.insert(0, ("name", "The group name must not be empty."))
    if problems:
        raise InvalidInputError(problems)
    return cleaned


async def _unique_name(session: AsyncSession, name: str, except_id: uuid.UUID | None = None) -> None:
    if await repository.name_taken(session, name, except_id):
        raise AlreadyExistsError(f"A group named '{name}' already exists.", "name")


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:  # a concurrent request took the name first
        raise AlreadyExistsError(f"A group named '{name}' already exists.", "name") from error


async def create_group(session: AsyncSession, actor: User, name: str, description: str | None) -> AccessGroup:
    cleaned = _check_texts(name, description)
    assert cleaned is not None
    await _unique_name(session, cleaned)
    group = AccessGroup(name=cleaned, description=(description or "").strip(), created_by_id=actor.id)
    session.add(group)
    await _flush_unique(session, cleaned)
    await audit.record(session, actor, "group.create", "group", group.id, {"name": cleaned})
    return group


async def _group(session: AsyncSession, group_id: uuid.UUID) -> AccessGroup:
    group = await repository.get_group(session, group_id, for_update=True)
    if group is None:
        raise NotFoundError.of("The group")
    return group


async def rename_group(
    session: AsyncSession, actor: User, group_id: uuid.UUID, name: str, description: str | None
) -> AccessGroup:
    cleaned = _check_texts(name, description)
    assert cleaned is not None
    group = await _group(session, group_id)
    await _unique_name(session, cleaned, group.id)
    details: dict[str, str] = {"from": group.name, "to": cleaned}
    group.name = cleaned
    if description is not None:
        group.description = description.strip()
    await _flush_unique(session, cleaned)
    await audit.record(session, actor, "group.rename", "group", group.id, details)
    return group


async def delete_group(session: AsyncSession, actor: User, group_id: uuid.UUID) -> uuid.UUID:
    group = await _group(session, group_id)
    await audit.record(session, actor, "group.delete", "group", group.id, {"name": group.name})
    await session.delete(group)
    await session.flush()
    return group_id


async def add_member(
    session: AsyncSession, actor: User, group_id: uuid.UUID, user_id: uuid.UUID
) -> AccessGroup:
    group = await _group(session, group_id)
    if await users_repository.get_user_for_update(session, user_id) is None:
        raise NotFoundError.of("The user")
    if await repository.add_member(session, group.id, user_id):
        await audit.record(session, actor, "group.add_member", "group", group.id, {"userId": str(user_id)})
    return group


async def remove_member(
    session: AsyncSession, actor: User, group_id: uuid.UUID, user_id: uuid.UUID
) -> AccessGroup:
    group = await _group(session, group_id)
    if not await repository.remove_member(session, group.id, user_id):
        raise NotFoundError("That user is not a member of this group.")
    await audit.record(session, actor, "group.remove_member", "group", group.id, {"userId": str(user_id)})
    return group
