"""Personal access tokens: the secret is shown once and stored only as a hash, scopes are
enforced per field, and revoking a token or deactivating its owner stops it at once — on
HTTP and on an already-open WebSocket. Expired, unknown and malformed tokens are refused
with the reason."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from sqlalchemy import text

from gql_server.db.models import Role, User
from tests.conftest import RunningServer
from tests.factories import client_for, create_model, create_user, grant_model
from tests.graphql_client import GraphQLClient, WebSocketSession

pytestmark = pytest.mark.asyncio(loop_scope="session")

CREATE = """
mutation($name: String!, $scopes: [AccessTokenScope!]!, $expiresAt: DateTime) {
  createAccessToken(name: $name, scopes: $scopes, expiresAt: $expiresAt) {
    __typename
    ... on AccessTokenCreated { secret token { id name prefix scopes status expiresAt } }
    ... on InvalidInput { message fieldErrors { field message } }
    ... on Forbidden { message }
  }
}
"""
MINE = """
query { myAccessTokens(includeRevoked: true) { totalCount items {
  id name prefix scopes createdAt expiresAt lastUsedAt revokedAt status } } }
"""
REVOKE = """
mutation($id: UUID!) { revokeAccessToken(id: $id) {
  __typename ... on AccessToken { id status revokedAt } ... on NotFound { message } } }
"""
MODELS = "query { models(first: 5) { totalCount } }"


async def create_token(
    client: GraphQLClient, scopes: list[str], name: str = "script", expires_at: str | None = None
) -> dict[str, Any]:
    data = await client.execute(CREATE, {"name": name, "scopes": scopes, "expiresAt": expires_at})
    result = data["createAccessToken"]
    assert result["__typename"] == "AccessTokenCreated", result
    return result  # type: ignore[no-any-return]


async def signed_in_user(server: RunningServer, role: Role = Role.USER) -> tuple[User, GraphQLClient]:
    user = await create_user(server.state.sessionmaker, role=role)
    return user, client_for(server.client, server.state.tokens, user)


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors"), body
    return body["errors"][0]  # type: ignore[no-any-return]


async def single_result(
    socket: WebSocketSession, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    operation = await socket.subscribe(query, variables or {})
    while True:
        message = await socket.next_message(15)
        if message.get("id") != operation:
            continue
        if message["type"] == "next":
            return message["payload"]  # type: ignore[no-any-return]
        if message["type"] == "error":
            return {"errors": message["payload"]}
        raise AssertionError(f"unexpected {message}")


async def test_the_secret_is_shown_once_and_only_its_hash_is_stored(server: RunningServer) -> None:
    user, client = await signed_in_user(server)
    created = await create_token(client, ["CHAT"], name="  my   laptop ")
    secret = created["secret"]
    assert secret.startswith("ragql_pat_") and len(secret) == len("ragql_pat_") + 43
    assert created["token"]["name"] == "my laptop" and created["token"]["scopes"] == ["CHAT"]
    assert created["token"]["prefix"] == secret[:16] and created["token"]["status"] == "ACTIVE"

    listed = (await client.execute(MINE))["myAccessTokens"]
    assert listed["totalCount"] == 1
    item = listed["items"][0]
    assert item["id"] == created["token"]["id"] and item["lastUsedAt"] is None
    assert secret not in str(listed)  # the list never shows it again

    async with server.state.sessionmaker() as session:
        rows = (
            (
                await session.execute(
                    text("SELECT * FROM personal_access_tokens WHERE user_id = :u"), {"u": user.id}
                )
            )
            .mappings()
            .all()
        )
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in rows[0].values())

    # The token works as a bearer token and its use is recorded.
    me = await client.with_token(secret).execute("query { me { id } }")
    assert me["me"]["id"] == str(user.id)
    used = (await client.execute(MINE))["myAccessTokens"]["items"][0]
    assert used["lastUsedAt"] is not None


async def test_scopes_are_enforced_per_field_even_for_an_administrator(server: RunningServer) -> None:
    _, admin = await signed_in_user(server, Role.ADMIN)
    chat = admin.with_token((await create_token(admin, ["CHAT"]))["secret"])
    assert (await chat.execute(MODELS))["models"]["totalCount"] >= 0
    assert (await chat.execute("query { chatSessions { totalCount } }"))["chatSessions"]["totalCount"] == 0

    refused = error_of(await chat.raw("query { users(first: 5) { totalCount } }"))
    assert refused["extensions"]["code"] == "FORBIDDEN" and "ADMIN scope" in refused["message"]
    refused = error_of(await chat.raw('mutation { createModel(input: {name: "nope"}) { __typename } }'))
    assert refused["extensions"]["code"] == "FORBIDDEN"
    # A token can mint no tokens and cannot change the password.
    refused = error_of(await chat.raw(CREATE, {"name": "more", "scopes": ["CHAT"]}))
    assert refused["extensions"]["code"] == "FORBIDDEN" and "Personal access tokens" in refused["message"]
    refused = error_of(
        await chat.raw(
            'mutation { changePassword(oldPassword: "x", newPassword: "new-password-12") { __typename } }'
        )
    )
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert error_of(await chat.raw(MINE))["extensions"]["code"] == "FORBIDDEN"

    # With the ADMIN scope the administrator's token reaches the administrative fields...
    both = admin.with_token((await create_token(admin, ["CHAT", "ADMIN"]))["secret"])
    assert (await both.execute("query { users(first: 5) { totalCount } }"))["users"]["totalCount"] >= 1
    # ...and an ADMIN-only token does not chat.
    admin_only = admin.with_token((await create_token(admin, ["ADMIN"]))["secret"])
    assert error_of(await admin_only.raw(MODELS))["extensions"]["code"] == "FORBIDDEN"


async def test_only_administrators_create_admin_tokens_and_bad_input_is_refused(
    server: RunningServer,
) -> None:
    _, client = await signed_in_user(server)
    data = await client.execute(CREATE, {"name": "root", "scopes": ["ADMIN"]})
    assert data["createAccessToken"]["__typename"] == "Forbidden", data
    data = await client.execute(CREATE, {"name": " ", "scopes": []})
    fields = {error["field"] for error in data["createAccessToken"]["fieldErrors"]}
    assert fields == {"name", "scopes"}, data
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    data = await client.execute(CREATE, {"name": "old", "scopes": ["CHAT"], "expiresAt": past})
    assert data["createAccessToken"]["fieldErrors"][0]["field"] == "expiresAt", data
    assert (await client.execute(MINE))["myAccessTokens"]["totalCount"] == 0


async def test_expired_unknown_and_malformed_tokens_are_refused_with_the_reason(
    server: RunningServer,
) -> None:
    _, client = await signed_in_user(server)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await create_token(client, ["CHAT"], expires_at=soon)
    async with server.state.sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE personal_access_tokens SET expires_at = now() - interval '1 minute' WHERE id = :id"),
            {"id": uuid.UUID(created["token"]["id"])},
        )
    expired = error_of(await client.with_token(created["secret"]).raw(MODELS))
    assert expired["extensions"]["code"] == "UNAUTHENTICATED" and "expired" in expired["message"], expired
    assert (await client.execute(MINE))["myAccessTokens"]["items"][0]["status"] == "EXPIRED"

    unknown = error_of(await client.with_token("ragql_pat_" + "A" * 43).raw(MODELS))
    assert unknown["extensions"]["code"] == "UNAUTHENTICATED" and "unknown" in unknown["message"], unknown
    malformed = error_of(await client.with_token("ragql_pat_short").raw(MODELS))
    assert malformed["extensions"]["code"] == "UNAUTHENTICATED" and "malformed" in malformed["message"]
    # Refused at connection_init on a WebSocket too.
    with pytest.raises(websockets.exceptions.ConnectionClosed, match="4403"):
        async with client.subscription_connection(token=created["secret"]):
            pass


async def test_revocation_stops_a_token_at_once_on_http_and_an_open_websocket(server: RunningServer) -> None:
    _, client = await signed_in_user(server)
    created = await create_token(client, ["CHAT"])
    token = client.with_token(created["secret"])
    async with token.subscription_connection() as socket:
        before = await single_result(socket, MODELS)
        assert before["data"]["models"]["totalCount"] == 0, before
        revoked = (await client.execute(REVOKE, {"id": created["token"]["id"]}))["revokeAccessToken"]
        assert revoked["status"] == "REVOKED" and revoked["revokedAt"] is not None
        after = await single_result(socket, MODELS)
        assert after.get("data") is None and error_of(after)["extensions"]["code"] == "UNAUTHENTICATED", after
        assert "revoked" in error_of(after)["message"]
    refused = error_of(await token.raw(MODELS))
    assert refused["extensions"]["code"] == "UNAUTHENTICATED" and "revoked" in refused["message"]


async def test_deactivating_the_owner_stops_the_token_on_http_and_an_open_websocket(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    user, client = await signed_in_user(server)
    token = client.with_token((await create_token(client, ["CHAT"]))["secret"])
    async with token.subscription_connection() as socket:
        assert (await single_result(socket, MODELS))["data"]["models"]["totalCount"] == 0
        done = await superadmin.execute(
            "mutation($id: UUID!) { deactivateUser(userId: $id) { __typename } }", {"id": str(user.id)}
        )
        assert done["deactivateUser"]["__typename"] == "User"
        after = await single_result(socket, MODELS)
        assert error_of(after)["extensions"]["code"] == "UNAUTHENTICATED", after
    refused = error_of(await token.raw(MODELS))
    assert refused["extensions"]["code"] == "UNAUTHENTICATED" and "deactivated" in refused["message"]


async def test_administrators_list_and_revoke_anyones_tokens_others_cannot(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    owner, client = await signed_in_user(server)
    created = await create_token(client, ["CHAT"], name="owner's script")
    _, stranger = await signed_in_user(server)
    hidden = (await stranger.execute(REVOKE, {"id": created["token"]["id"]}))["revokeAccessToken"]
    assert hidden["__typename"] == "NotFound"
    assert (
        error_of(await stranger.raw("query { accessTokens { totalCount } }"))["extensions"]["code"]
        == "FORBIDDEN"
    )

    listed = await superadmin.execute(
        "query($u: UUID!) { accessTokens(userId: $u) { totalCount items { id name userId } } }",
        {"u": str(owner.id)},
    )
    assert [item["id"] for item in listed["accessTokens"]["items"]] == [created["token"]["id"]]
    revoked = (await superadmin.execute(REVOKE, {"id": created["token"]["id"]}))["revokeAccessToken"]
    assert revoked["status"] == "REVOKED"
    refused = error_of(await client.with_token(created["secret"]).raw(MODELS))
    assert refused["extensions"]["code"] == "UNAUTHENTICATED"


async def test_revocation_ends_an_open_subscription_of_the_token(server: RunningServer) -> None:
    user, client = await signed_in_user(server)
    model = await create_model(server.state.sessionmaker)
    await grant_model(server.state.sessionmaker, model, user=user)
    created = await create_token(client, ["CHAT"])
    async with client.with_token(created["secret"]).subscription_connection() as socket:
        operation = await socket.subscribe(
            "subscription($m: UUID!) { documentEvents(modelId: $m) { documentId status } }",
            {"m": str(model.id)},
        )
        with pytest.raises(TimeoutError):  # open and quiet: no documents are being processed
            await socket.next_message(1.5)
        await client.execute(REVOKE, {"id": created["token"]["id"]})
        message = await socket.next_message(10)
        assert message["id"] == operation and message["type"] in ("error", "next"), message
        payload = message["payload"]
        errors = payload if isinstance(payload, list) else payload.get("errors")
        assert errors and errors[0]["extensions"]["code"] == "UNAUTHENTICATED", message
        assert "revoked" in errors[0]["message"]
