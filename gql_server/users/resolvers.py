"""User administration and self-service: thin resolvers over users.service."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from gql_server.auth.types import AuthPayload
from gql_server.context import Info
from gql_server.db.models import Role
from gql_server.errors import Forbidden, InvalidInput, NotFound, maps_domain_errors
from gql_server.events.bus import AccessChanged, AccessChangeReason, publish_access_changed
from gql_server.kit.field_permissions import admin_only, session_only, signed_in
from gql_server.kit.page import Page, build_page, parse_page_arguments
from gql_server.users import service
from gql_server.users.repository import UserOrder
from gql_server.users.types import User

UserResult = Annotated[User | NotFound | Forbidden | InvalidInput, strawberry.union("UserResult")]
UpdateProfileResult = Annotated[User | InvalidInput, strawberry.union("UpdateProfileResult")]
ChangePasswordResult = Annotated[AuthPayload | InvalidInput, strawberry.union("ChangePasswordResult")]


@strawberry.type
class UsersQuery:
    @strawberry.field(
        description="Search and page through accounts. Administrators only.", extensions=admin_only()
    )
    async def users(
        self,
        info: Info,
        search: str | None = None,
        role: Role | None = None,
        is_active: bool | None = None,
        first: int = 20,
        offset: int | None = None,
        after: str | None = None,
        order_by: UserOrder = UserOrder.EMAIL_ASC,
    ) -> Page[User]:
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await service.list_users(
                session,
                search=search[:320] if search else None,
                role=role,
                is_active=is_active,
                order=order_by,
                limit=request.limit,
                offset=request.offset,
            )
        return build_page([User.from_row(row) for row in rows], total, request)


# Actions after which a user may see less than before.
NARROWING_ACTIONS = {
    "demote": AccessChangeReason.USER_DEMOTED,
    "deactivate": AccessChangeReason.USER_DEACTIVATED,
}


async def _admin_action(info: Info, action: str, user_id: uuid.UUID) -> UserResult:
    actor = info.context.require_user()
    actions = {
        "promote": service.promote_to_admin,
        "demote": service.demote_to_user,
        "deactivate": service.deactivate,
        "reactivate": service.reactivate,
    }
    async with info.context.sessionmaker.begin() as session:
        user = await actions[action](session, actor, user_id)
    if reason := NARROWING_ACTIONS.get(action):
        # After the commit: the user's open subscriptions re-check (gql_server/access/watch.py).
        await publish_access_changed(info.context.state.bus, AccessChanged.of(reason, user_ids=[user_id]))
    elif action == "promote":  # an administrator sees every model: the user's open model list refreshes
        change = AccessChanged.of(AccessChangeReason.USER_PROMOTED, user_ids=[user_id])
        await publish_access_changed(info.context.state.bus, change)
    return User.from_row(user)


@strawberry.type
class UsersMutation:
    @strawberry.mutation(
        description="Make a user an administrator. Administrators only.", extensions=admin_only()
    )
    @maps_domain_errors
    async def promote_user(self, info: Info, user_id: uuid.UUID) -> UserResult:
        return await _admin_action(info, "promote", user_id)

    @strawberry.mutation(
        description="Make an administrator a plain user again. Only the superadmin demotes administrators.",
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def demote_user(self, info: Info, user_id: uuid.UUID) -> UserResult:
        return await _admin_action(info, "demote", user_id)

    @strawberry.mutation(
        description="Deactivate an account: its tokens stop working at once. "
        "Only the superadmin deactivates administrators; the superadmin cannot be deactivated.",
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def deactivate_user(self, info: Info, user_id: uuid.UUID) -> UserResult:
        return await _admin_action(info, "deactivate", user_id)

    @strawberry.mutation(description="Reactivate a deactivated account.", extensions=admin_only())
    @maps_domain_errors
    async def reactivate_user(self, info: Info, user_id: uuid.UUID) -> UserResult:
        return await _admin_action(info, "reactivate", user_id)

    @strawberry.mutation(description="Edit your own profile.", extensions=signed_in())
    @maps_domain_errors
    async def update_profile(self, info: Info, display_name: str | None = None) -> UpdateProfileResult:
        user = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            updated = await service.update_profile(session, user, display_name)
        return User.from_row(updated)

    @strawberry.mutation(
        description="Change your password. Signs out every other session; returns fresh tokens. "
        "Needs a log-in session (a personal access token cannot).",
        extensions=session_only(),
    )
    @maps_domain_errors
    async def change_password(self, info: Info, old_password: str, new_password: str) -> ChangePasswordResult:
        user = info.context.require_user()
        state = info.context.state
        async with state.sessionmaker.begin() as session:
            issued = await service.change_password(
                session,
                state.tokens,
                state.settings.refresh_token_days,
                user,
                passwords=state.passwords,
                old_password=old_password,
                new_password=new_password,
            )
        # Every other session ended (token version bumped): so do its open subscriptions.
        change = AccessChanged.of(AccessChangeReason.SESSIONS_REVOKED, user_ids=[user.id])
        await publish_access_changed(state.bus, change)
        return AuthPayload.from_session(issued, info)
