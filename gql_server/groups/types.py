"""The AccessGroup GraphQL type: columns mapped by strawberry-sqlalchemy-mapper, plus
loader-backed fields (member count for everyone who may see the group, members for admins)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gql_server.context import Info
from gql_server.db import models
from gql_server.kit.field_permissions import admin_only
from gql_server.kit.mapper import mapper

if TYPE_CHECKING:
    from gql_server.quotas.types import Quota
    from gql_server.users.types import User


@mapper.type(models.AccessGroup)
class AccessGroup:
    @classmethod
    def from_row(cls, row: models.AccessGroup) -> AccessGroup:
        """The mapper's type resolves its columns from the ORM row itself: the row is the value."""
        return row  # type: ignore[return-value]

    # The sync columns are administrators' business: declared below with their permission.
    __exclude__ = ["created_by_id", "external_name", "last_synced_at"]

    @strawberry.field(
        description=(
            "The identity provider's group this group mirrors (OIDC group sync): at each OIDC "
            "log-in, a user's membership is set from the groups claim. Null: managed by hand. "
            "Administrators only."
        ),
        extensions=admin_only(),
    )
    def external_name(self) -> str | None:
        row: models.AccessGroup = self  # type: ignore[assignment]
        return row.external_name

    @strawberry.field(
        description="When an OIDC log-in last set a membership of this group. Administrators only.",
        extensions=admin_only(),
    )
    def last_synced_at(self) -> datetime | None:
        row: models.AccessGroup = self  # type: ignore[assignment]
        return row.last_synced_at

    @strawberry.field(description="How many users belong to the group.")
    async def member_count(self, info: Info) -> int:
        from gql_server.groups.loaders import member_count

        row: models.AccessGroup = self  # type: ignore[assignment]
        return await info.context.loader("groups.member_count", member_count).load(row.id)  # type: ignore[no-any-return]

    @strawberry.field(
        description="The members. Administrators only.",
        extensions=admin_only(),
    )
    async def members(
        self, info: Info
    ) -> list[Annotated[User, strawberry.lazy("gql_server.users.types")]] | None:
        from gql_server.groups.loaders import members

        row: models.AccessGroup = self  # type: ignore[assignment]
        return await info.context.loader("groups.members", members).load(row.id)  # type: ignore[no-any-return]

    @strawberry.field(
        description=(
            "The group's quota (setGroupQuota): a member gets the most generous limit among "
            "their groups that set it, unless their own quota sets it. Administrators only."
        ),
        extensions=admin_only(),
    )
    async def quota(self, info: Info) -> Annotated[Quota, strawberry.lazy("gql_server.quotas.types")] | None:
        from gql_server.quotas.loaders import quota_of_group
        from gql_server.quotas.types import Quota

        row: models.AccessGroup = self  # type: ignore[assignment]
        values = await info.context.loader("quotas.quota_of_group", quota_of_group).load(row.id)
        return Quota.from_values(values)
