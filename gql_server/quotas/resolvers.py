"""Quota queries and mutations: myUsage (signed in); usage, groupUsage, modelUsage, setUserQuota,
setGroupQuota (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from gql_server.context import Info
from gql_server.errors import InvalidInput, NotFound, maps_domain_errors
from gql_server.groups.types import AccessGroup
from gql_server.kit.field_permissions import admin_only, signed_in
from gql_server.kit.page import Page, build_page, parse_page_arguments
from gql_server.quotas import service
from gql_server.quotas.types import GroupUsage, ModelUsage, QuotaInput, UsageSummary
from gql_server.users.types import User

SetUserQuotaResult = Annotated[User | NotFound | InvalidInput, strawberry.union("SetUserQuotaResult")]
SetGroupQuotaResult = Annotated[
    AccessGroup | NotFound | InvalidInput, strawberry.union("SetGroupQuotaResult")
]


@strawberry.type
class QuotasQuery:
    @strawberry.field(
        description=(
            "Your usage today and this month (UTC) and your effective limits, with when each resets."
        ),
        extensions=signed_in(),
    )
    async def my_usage(self, info: Info) -> UsageSummary:
        user = info.context.require_user()
        async with info.context.sessionmaker() as session:
            [summary] = await service.summaries(session, info.context.state.settings, [user])
        return UsageSummary.from_summary(summary)

    @strawberry.field(
        description=(
            "Every user's usage today and this month with their effective limits, by email "
            "(or one user's with `userId`; `search` matches email or display name). "
            "Administrators only."
        ),
        extensions=admin_only(),
    )
    async def usage(
        self,
        info: Info,
        user_id: uuid.UUID | None = None,
        search: str | None = None,
        first: int = 50,
        offset: int | None = None,
        after: str | None = None,
    ) -> Page[UsageSummary]:
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await service.usage_page(
                session,
                info.context.state.settings,
                user_id=user_id,
                search=search[:120] if search else None,
                limit=request.limit,
                offset=request.offset,
            )
        return build_page([UsageSummary.from_summary(row) for row in rows], total, request)

    @strawberry.field(
        description=(
            "Every access group's usage today and this month, by name (or one group's with "
            "`groupId`): the sum over each group's current members. Administrators only."
        ),
        extensions=admin_only(),
    )
    async def group_usage(
        self,
        info: Info,
        group_id: uuid.UUID | None = None,
        first: int = 50,
        offset: int | None = None,
        after: str | None = None,
    ) -> Page[GroupUsage]:
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await service.group_usage_page(
                session, group_id=group_id, limit=request.limit, offset=request.offset
            )
        return build_page([GroupUsage.from_usage(row) for row in rows], total, request)

    @strawberry.field(
        description=(
            "Every model's usage today and this month over all users, by name (or one model's "
            "with `modelId`). Administrators only."
        ),
        extensions=admin_only(),
    )
    async def model_usage(
        self,
        info: Info,
        model_id: uuid.UUID | None = None,
        first: int = 50,
        offset: int | None = None,
        after: str | None = None,
    ) -> Page[ModelUsage]:
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await service.model_usage_page(
                session, model_id=model_id, limit=request.limit, offset=request.offset
            )
        return build_page([ModelUsage.from_usage(row) for row in rows], total, request)


@strawberry.type
class QuotasMutation:
    @strawberry.mutation(
        description=(
            "Set a user's own quota (replacing it): it overrides their groups' quotas for every "
            "limit it sets. All null: the user gets their groups' limits again."
        ),
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def set_user_quota(self, info: Info, user_id: uuid.UUID, input: QuotaInput) -> SetUserQuotaResult:
        actor = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            user = await service.set_user_quota(session, actor, user_id, input.to_values())
        return User.from_row(user)

    @strawberry.mutation(
        description=(
            "Set an access group's quota (replacing it). A member gets the most generous limit "
            "among their groups that set it, unless their own quota sets it."
        ),
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def set_group_quota(
        self, info: Info, group_id: uuid.UUID, input: QuotaInput
    ) -> SetGroupQuotaResult:
        actor = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            group = await service.set_group_quota(session, actor, group_id, input.to_values())
        return AccessGroup.from_row(group)
