"""Access-group queries and mutations."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from gql_server.access.policy import models_granted_to_group
from gql_server.context import Info
from gql_server.errors import AlreadyExists, InvalidInput, NotFound, maps_domain_errors
from gql_server.events.bus import AccessChanged, AccessChangeReason, publish_access_changed
from gql_server.groups import repository, service
from gql_server.groups.types import AccessGroup
from gql_server.kit.field_permissions import admin_only, signed_in
from gql_server.kit.page import Page, build_page, parse_page_arguments

EXTERNAL_NAME_ARGUMENT = strawberry.argument(
    description=(
        "The name of the identity provider's group to mirror, exactly as the groups claim "
        "lists it (at most 200 characters). Null or blank: not synced."
    )
)


@strawberry.type
class GroupDeleted:
    id: uuid.UUID


GroupResult = Annotated[
    AccessGroup | NotFound | InvalidInput | AlreadyExists, strawberry.union("GroupResult")
]
DeleteGroupResult = Annotated[GroupDeleted | NotFound, strawberry.union("DeleteGroupResult")]


@strawberry.type
class GroupsQuery:
    @strawberry.field(description="All access groups. Administrators only.", extensions=admin_only())
    async def access_groups(
        self,
        info: Info,
        search: str | None = None,
        first: int = 50,
        offset: int | None = None,
        after: str | None = None,
    ) -> Page[AccessGroup]:
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await repository.list_groups(
                session, search=search[:120] if search else None, limit=request.limit, offset=request.offset
            )
        return build_page([AccessGroup.from_row(row) for row in rows], total, request)

    @strawberry.field(
        description="The access groups you belong to.",
        extensions=signed_in(),
    )
    async def my_groups(self, info: Info) -> list[AccessGroup]:
        user = info.context.require_user()
        async with info.context.sessionmaker() as session:
            rows = await repository.groups_of_user(session, user.id)
        return [AccessGroup.from_row(row) for row in rows]


async def _run(info: Info, action, *args) -> GroupResult:  # type: ignore[no-untyped-def]
    actor = info.context.require_user()
    async with info.context.sessionmaker.begin() as session:
        group = await action(session, actor, *args)
    return AccessGroup.from_row(group)


@strawberry.type
class GroupsMutation:
    @strawberry.mutation(description="Create an access group.", extensions=admin_only())
    @maps_domain_errors
    async def create_group(
        self,
        info: Info,
        name: str,
        description: str | None = None,
        external_name: Annotated[str | None, EXTERNAL_NAME_ARGUMENT] = None,
    ) -> GroupResult:
        return await _run(info, service.create_group, name, description, external_name)

    @strawberry.mutation(
        description=(
            "Set (or, with null or blank, clear) the identity provider's group this group mirrors. "
            "Members change at their next OIDC log-in."
        ),
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def set_group_external_name(
        self,
        info: Info,
        group_id: uuid.UUID,
        external_name: Annotated[str | None, EXTERNAL_NAME_ARGUMENT] = None,
    ) -> GroupResult:
        return await _run(info, service.set_external_name, group_id, external_name)

    @strawberry.mutation(
        description="Rename a group (and optionally change its description).", extensions=admin_only()
    )
    @maps_domain_errors
    async def rename_group(
        self, info: Info, group_id: uuid.UUID, name: str, description: str | None = None
    ) -> GroupResult:
        return await _run(info, service.rename_group, group_id, name, description)

    @strawberry.mutation(description="Delete a group; its model grants go with it.", extensions=admin_only())
    @maps_domain_errors
    async def delete_group(self, info: Info, group_id: uuid.UUID) -> DeleteGroupResult:
        actor = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            # Its grants go with it: read them first, to tell those models' subscriptions.
            granted = await models_granted_to_group(session, group_id)
            deleted = await service.delete_group(session, actor, group_id)
        if granted:
            change = AccessChanged.of(AccessChangeReason.GROUP_DELETED, model_ids=granted, group_id=group_id)
            await publish_access_changed(info.context.state.bus, change)
        return GroupDeleted(id=deleted)

    @strawberry.mutation(
        description="Add a user to a group (no-op when already a member).", extensions=admin_only()
    )
    @maps_domain_errors
    async def add_group_member(self, info: Info, group_id: uuid.UUID, user_id: uuid.UUID) -> GroupResult:
        result = await _run(info, service.add_member, group_id, user_id)
        # After the commit: the new member's open model list refreshes.
        change = AccessChanged.of(AccessChangeReason.MEMBERSHIP_ADDED, user_ids=[user_id], group_id=group_id)
        await publish_access_changed(info.context.state.bus, change)
        return result

    @strawberry.mutation(description="Remove a user from a group.", extensions=admin_only())
    @maps_domain_errors
    async def remove_group_member(self, info: Info, group_id: uuid.UUID, user_id: uuid.UUID) -> GroupResult:
        result = await _run(info, service.remove_member, group_id, user_id)
        # After the commit: the former member's open subscriptions re-check.
        change = AccessChanged.of(
            AccessChangeReason.MEMBERSHIP_REMOVED, user_ids=[user_id], group_id=group_id
        )
        await publish_access_changed(info.context.state.bus, change)
        return result
