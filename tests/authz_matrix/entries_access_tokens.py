"""Matrix entries for personal access tokens (issue 15): each signed-in caller manages their
own tokens with a log-in session; administrators list everyone's and revoke anyone's."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from gql_server.access_tokens import service
from gql_server.db.models import AccessTokenScope, PersonalAccessToken
from tests.authz_matrix import MatrixEntry, Outcome, World, expect, world_object

Out = Outcome


@world_object("member_access_token")
async def _member_access_token(world: World) -> PersonalAccessToken:
    """A CHAT token of `member` (a fresh one per actor run for revocation)."""
    async with world.sessionmaker.begin() as session:
        created = await service.create_token(
            session,
            world.users["member"],
            name=f"matrix {uuid.uuid4().hex[:6]}",
            expires_at=None,
            scopes=[AccessTokenScope.CHAT],
        )
    return created.row


async def _fresh_member_token(world: World, actor: str) -> dict[str, Any]:
    return {"id": await world.id_of("member_access_token", fresh=True)}


async def _lists_only_own(value: Any, world: World, actor: str) -> None:
    async with world.sessionmaker() as session:
        owners = set(
            await session.scalars(
                select(PersonalAccessToken.user_id).where(
                    PersonalAccessToken.id.in_([uuid.UUID(item["id"]) for item in value["items"]])
                )
            )
        )
    assert owners <= {world.users[actor].id}, owners


def _created(value: Any, world: World, actor: str) -> None:
    assert value["__typename"] == "AccessTokenCreated" and value["secret"].startswith("ragql_pat_"), value


ENTRIES = [
    MatrixEntry(
        field="myAccessTokens",
        kind="query",
        document="query { myAccessTokens { totalCount items { id } } }",
        expect={**expect.signed_in(), "chat_token": Out.FORBIDDEN},
        check=_lists_only_own,
    ),
    MatrixEntry(
        field="accessTokens",
        kind="query",
        document="query { accessTokens { totalCount items { id userId } } }",
        variables=lambda world, actor: {},
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="createAccessToken",
        kind="mutation",
        document="""mutation { createAccessToken(name: "matrix", scopes: [CHAT]) {
            __typename ... on AccessTokenCreated { secret } } }""",
        # A token cannot mint tokens (@isInteractiveSession).
        expect={**expect.signed_in(), "chat_token": Out.FORBIDDEN},
        check=_created,
    ),
    MatrixEntry(
        field="createAccessToken",
        kind="mutation",
        case="ADMIN scope",
        document="""mutation { createAccessToken(name: "matrix admin", scopes: [CHAT, ADMIN]) {
            __typename ... on AccessTokenCreated { secret } } }""",
        expect={
            **expect.signed_in(),
            "user": Out.REFUSED,
            "member": Out.REFUSED,
            "chat_token": Out.FORBIDDEN,
        },
    ),
    MatrixEntry(
        field="revokeAccessToken",
        kind="mutation",
        document="mutation($id: UUID!) { revokeAccessToken(id: $id) { __typename } }",
        variables=_fresh_member_token,
        expect={**expect.admin_only(), "user": Out.HIDDEN, "member": Out.ALLOWED},
    ),
]
