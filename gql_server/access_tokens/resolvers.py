"""Personal access tokens: create (secret shown once), list, revoke. Thin over the service.

Managing tokens needs a log-in session (`session_only()`): a token cannot mint or revoke
tokens. Administrators list everyone's tokens with `accessTokens` (ADMIN scope for a token)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry

from gql_server.access_tokens import service
from gql_server.access_tokens.types import AccessToken, AccessTokenCreated, AccessTokenScope
from gql_server.context import Info
from gql_server.db.base import utcnow
from gql_server.errors import Forbidden, InvalidInput, NotFound, maps_domain_errors
from gql_server.events.bus import AccessChanged, AccessChangeReason, publish_access_changed
from gql_server.kit.field_permissions import admin_only, session_only
from gql_server.kit.page import Page, build_page, parse_page_arguments

CreateAccessTokenResult = Annotated[
    AccessTokenCreated | InvalidInput | Forbidden, strawberry.union("CreateAccessTokenResult")
]
RevokeAccessTokenResult = Annotated[AccessToken | NotFound, strawberry.union("RevokeAccessTokenResult")]


async def _page(
    info: Info,
    user_id: uuid.UUID | None,
    include_revoked: bool,
    first: int,
    offset: int | None,
    after: str | None,
) -> Page[AccessToken]:
    request = parse_page_arguments(first, offset, after)
    async with info.context.sessionmaker() as session:
        rows, total = await service.list_tokens(
            session,
            user_id=user_id,
            include_revoked=include_revoked,
            limit=request.limit,
            offset=request.offset,
        )
    now = utcnow()
    return build_page([AccessToken.from_row(row, now) for row in rows], total, request)


@strawberry.type
class AccessTokensQuery:
    @strawberry.field(
        description="Your personal access tokens, newest first (revoked ones with includeRevoked). "
        "Needs a log-in session.",
        extensions=session_only(),
    )
    async def my_access_tokens(
        self,
        info: Info,
        include_revoked: bool = False,
        first: int = 20,
        offset: int | None = None,
        after: str | None = None,
    ) -> Page[AccessToken]:
        user = info.context.require_user()
        return await _page(info, user.id, include_revoked, first, offset, after)

    @strawberry.field(
        description="Everyone's personal access tokens (or one user's), newest first. Administrators only.",
        extensions=admin_only(),
    )
    async def access_tokens(
        self,
        info: Info,
        user_id: uuid.UUID | None = None,
        include_revoked: bool = False,
        first: int = 20,
        offset: int | None = None,
        after: str | None = None,
    ) -> Page[AccessToken]:
        return await _page(info, user_id, include_revoked, first, offset, after)


@strawberry.type
class AccessTokensMutation:
    @strawberry.mutation(
        description="Create a personal access token. The secret is in the answer, once: it is stored "
        "only as a hash. expiresAt null: never expires. The ADMIN scope is for administrators. "
        "Needs a log-in session (a token cannot create tokens).",
        extensions=session_only(),
    )
    @maps_domain_errors
    async def create_access_token(
        self,
        info: Info,
        name: str,
        scopes: list[AccessTokenScope],  # type: ignore[valid-type]
        expires_at: datetime | None = None,
    ) -> CreateAccessTokenResult:
        user = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            created = await service.create_token(
                session, user, name=name, expires_at=expires_at, scopes=scopes
            )
        return AccessTokenCreated(token=AccessToken.from_row(created.row, utcnow()), secret=created.secret)

    @strawberry.mutation(
        description="Revoke a personal access token: it stops working at once, also on open "
        "connections. Your own tokens; administrators revoke anyone's. Needs a log-in session.",
        extensions=session_only(),
    )
    @maps_domain_errors
    async def revoke_access_token(self, info: Info, id: uuid.UUID) -> RevokeAccessTokenResult:
        user = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            row = await service.revoke_token(session, user, id)
        # After the commit: the owner's open subscriptions re-check (gql_server/access/watch.py).
        change = AccessChanged.of(AccessChangeReason.ACCESS_TOKEN_REVOKED, user_ids=[row.user_id])
        await publish_access_changed(info.context.state.bus, change)
        return AccessToken.from_row(row, utcnow())
