"""Access groups: create, rename, delete, membership. Administrators only; services never commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
EXTERNAL_NAME_MAX = 200


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


def _check_external_name(external_name: str | None) -> str | None:
    """The IdP group name, stripped; None or blank: the group is not synced."""
    if external_name is None or not external_name.strip():
        return None
    cleaned = external_name.strip()
    if len(cleaned) > EXTERNAL_NAME_MAX:
        raise InvalidInputError.of(
            "externalName", f"externalName can have at most {EXTERNAL_NAME_MAX} characters."
        )
    return cleaned


async def _unique_external_name(
    session: AsyncSession, external_name: str | None, except_id: uuid.UUID | None = None
) -> None:
    if external_name is not None and await repository.external_name_taken(session, external_name, except_id):
        raise AlreadyExistsError(
            f"Another group already mirrors the identity provider's group '{external_name}'.", "externalName"
        )


async def create_group(
    session: AsyncSession, actor: User, name: str, description: str | None, external_name: str | None = None
) -> AccessGroup:
    cleaned = _check_texts(name, description)
    assert cleaned is not None
    external = _check_external_name(external_name)
    await _unique_name(session, cleaned)
    await _unique_external_name(session, external)
    group = AccessGroup(
        name=cleaned, description=(description or "").strip(), created_by_id=actor.id, external_name=external
    )
    session.add(group)
    await _flush_unique(session, cleaned)
    details = {"name": cleaned} | ({"externalName": external} if external else {})
    await audit.record(session, actor, "group.create", "group", group.id, details)
    return group


async def set_external_name(
    session: AsyncSession, actor: User, group_id: uuid.UUID, external_name: str | None
) -> AccessGroup:
    """Name the IdP group this group mirrors (None or blank: stop syncing). Memberships change
    at each member's next OIDC log-in, not now."""
    external = _check_external_name(external_name)
    group = await _group(session, group_id)
    await _unique_external_name(session, external, group.id)
    if group.external_name != external:
        details = {"from": group.external_name, "to": external}
        group.external_name = external
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError as error:  # a concurrent request took the name first
            raise AlreadyExistsError(
                f"Another group already mirrors the identity provider's group '{external}'.", "externalName"
            ) from error
        await audit.record(session, actor, "group.set_external_name", "group", group.id, details)
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


@dataclass
class MembershipSync:
    """What one OIDC log-in changed in the user's synced memberships."""

    added: list[uuid.UUID] = field(default_factory=list)
    removed: list[uuid.UUID] = field(default_factory=list)


async def sync_external_memberships(
    session: AsyncSession, user: User, idp_groups: Collection[str]
) -> MembershipSync:
    """Set the user's memberships in every group that mirrors an IdP group from the groups
    claim: member exactly of those whose externalName the claim lists. Groups without an
    externalName are left alone. Each change is audit-logged with the user as the actor (it
    is their log-in) and `"source": "oidc"`. The caller holds the user's row lock."""
    claimed = set(idp_groups)
    now = datetime.now(UTC)
    current = await repository.member_group_ids(session, user.id)
    result = MembershipSync()
    touched: list[uuid.UUID] = []
    for group in await repository.synced_groups(session):
        wanted = group.external_name in claimed
        if wanted and group.id not in current:
            await repository.add_member(session, group.id, user.id)
            result.added.append(group.id)
            action = "group.sync_add_member"
        elif not wanted and group.id in current:
            await repository.remove_member(session, group.id, user.id)
            result.removed.append(group.id)
            action = "group.sync_remove_member"
        else:
            if wanted:
                touched.append(group.id)
            continue
        touched.append(group.id)
        details = {"userId": str(user.id), "externalName": group.external_name, "source": "oidc"}
        await audit.record(session, user, action, "group", group.id, details)
    await repository.mark_synced(session, touched, now)
    return result
