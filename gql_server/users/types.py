"""GraphQL types mapped from ORM rows with strawberry-sqlalchemy-mapper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from gql_server.context import Info
from gql_server.db import models
from gql_server.kit.field_permissions import admin_only, admin_or_self
from gql_server.kit.mapper import mapper

if TYPE_CHECKING:
    from gql_server.groups.types import AccessGroup
    from gql_server.quotas.types import Quota


@mapper.type(models.User)
class User:
    # Secrets and internals never reach the API.
    @classmethod
    def from_row(cls, row: models.User) -> User:
        """The mapper's type resolves its columns from the ORM row itself: the row is the value."""
        return row  # type: ignore[return-value]

    __exclude__ = ["password_hash", "token_version"]

    @strawberry.field(
        description="Access groups this user belongs to. Administrators, or the user themselves.",
        extensions=admin_or_self(),
    )
    async def groups(
        self, info: Info
    ) -> list[Annotated[AccessGroup, strawberry.lazy("gql_server.groups.types")]] | None:
        from gql_server.users.loaders import groups_of_user

        row: models.User = self  # type: ignore[assignment]
        return await info.context.loader("users.groups_of_user", groups_of_user).load(row.id)  # type: ignore[no-any-return]

    @strawberry.field(
        description=(
            "The user's own quota (setUserQuota); its limits override the groups'. "
            "Their effective limits: `usage(userId:)`. Administrators only."
        ),
        extensions=admin_only(),
    )
    async def quota(self, info: Info) -> Annotated[Quota, strawberry.lazy("gql_server.quotas.types")] | None:
        from gql_server.quotas.loaders import quota_of_user
        from gql_server.quotas.types import Quota

        row: models.User = self  # type: ignore[assignment]
        values = await info.context.loader("quotas.quota_of_user", quota_of_user).load(row.id)
        return Quota.from_values(values)
