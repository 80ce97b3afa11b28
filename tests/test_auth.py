"""Accounts and authentication against a real server and database."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import websockets
from sqlalchemy import select, update

from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.models import RefreshToken, User
from tests.conftest import LOG_IN, SIGN_UP, SUPERADMIN_EMAIL, RunningServer, log_in, sign_up
from tests.graphql_client import GraphQLResponseError

pytestmark = pytest.mark.asyncio

ME = "{ me { id email role isActive displayName } }"
REFRESH = """
mutation Refresh($token: String!) {
  refreshToken(refreshToken: $token) {
    __typename
    ... on AuthPayload { accessToken refreshToken }
    ... on InvalidRefreshToken { message }
  }
}
"""


async def test_sign_up_log_in_and_me(server: RunningServer) -> None:
    client = await sign_up(server.client, "Alice@Example.com")
    me = (await client.execute(ME))["me"]
    assert me["email"] == "alice@example.com"
    assert me["role"] == "USER"
    assert me["isActive"] is True
    logged_in = await log_in(server.client, "alice@example.com", "user-password-1")
    assert (await logged_in.execute(ME))["me"]["id"] == me["id"]


async def test_superadmin_is_bootstrapped_once(server: RunningServer) -> None:
    admin = await log_in(server.client, SUPERADMIN_EMAIL, "superadmin-password-1")
    assert (await admin.execute(ME))["me"]["role"] == "SUPERADMIN"
    async with server.state.sessionmaker() as session:
        count = len((await session.execute(select(User).where(User.role == "SUPERADMIN"))).all())
    assert count == 1


async def test_duplicate_email_and_weak_password(server: RunningServer) -> None:
    await sign_up(server.client, "dup@example.com")
    again = await server.client.execute(SIGN_UP, {"email": "DUP@example.com", "password": "user-password-1"})
    assert again["signUp"]["__typename"] == "AlreadyExists"
    weak = await server.client.execute(SIGN_UP, {"email": "weak@example.com", "password": "short"})
    assert weak["signUp"]["__typename"] == "InvalidInput"
    assert "at least 10 characters" in weak["signUp"]["message"]
    letters_only = await server.client.execute(
        SIGN_UP, {"email": "weak2@example.com", "password": "onlyletterspassword"}
    )
    assert letters_only["signUp"]["__typename"] == "InvalidInput"
    bad_email = await server.client.execute(SIGN_UP, {"email": "not-an-email", "password": "user-password-1"})
    assert bad_email["signUp"]["__typename"] == "InvalidInput"
    assert "valid email" in bad_email["signUp"]["message"]


async def test_login_failures_do_not_reveal_whether_email_exists(server: RunningServer) -> None:
    await sign_up(server.client, "known@example.com")
    wrong_password = await server.client.execute(
        LOG_IN, {"email": "known@example.com", "password": "wrong-password-1"}
    )
    unknown = await server.client.execute(
        LOG_IN, {"email": "nobody@example.com", "password": "wrong-password-1"}
    )
    assert wrong_password["logIn"]["__typename"] == unknown["logIn"]["__typename"] == "InvalidCredentials"
    assert wrong_password["logIn"]["message"] == unknown["logIn"]["message"]


async def test_login_is_rate_limited_per_account(server: RunningServer) -> None:
    await sign_up(server.client, "target@example.com")
    results = []
    for _ in range(7):
        data = await server.client.execute(
            LOG_IN, {"email": "target@example.com", "password": "bad-password-9"}
        )
        results.append(data["logIn"]["__typename"])
    assert results[:5] == ["InvalidCredentials"] * 5
    assert results[5:] == ["RateLimited"] * 2
    # Even the right password is refused while limited (no oracle for guessing).
    data = await server.client.execute(LOG_IN, {"email": "target@example.com", "password": "user-password-1"})
    assert data["logIn"]["__typename"] == "RateLimited"


async def test_login_is_rate_limited_per_address(server: RunningServer) -> None:
    outcomes = []
    for index in range(22):
        data = await server.client.execute(
            LOG_IN, {"email": f"spray{index}@example.com", "password": "bad-password-9"}
        )
        outcomes.append(data["logIn"]["__typename"])
    assert outcomes[:20] == ["InvalidCredentials"] * 20
    assert outcomes[20:] == ["RateLimited"] * 2


async def test_tampered_malformed_and_expired_tokens(server: RunningServer) -> None:
    client = await sign_up(server.client, "tok@example.com")
    token = client.token or ""
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}"
    for bad in (tampered, "not-a-jwt", "a.b.c", ""):
        body = await server.client.with_token(bad).raw(ME)
        assert body["data"]["me"] is None
        assert "errors" not in body
    # A token signed with the right key but already expired.
    codec = AccessTokenCodec(server.settings.jwt_secret, timedelta(seconds=-10))
    me_id = uuid.UUID((await client.execute(ME))["me"]["id"])
    expired = codec.issue(me_id, 0).token
    assert (await server.client.with_token(expired).raw(ME))["data"]["me"] is None
    # Protected fields say why.
    body = await server.client.with_token(expired).raw("mutation { logOut { ok } }")
    assert "errors" not in body
    # A token from another server (other secret) is rejected.
    foreign = (
        AccessTokenCodec(b"another-secret-another-secret-000", timedelta(minutes=5)).issue(me_id, 0).token
    )
    assert (await server.client.with_token(foreign).raw(ME))["data"]["me"] is None


async def test_refresh_rotation_and_reuse_revokes_family(server: RunningServer) -> None:
    data = await server.client.execute(SIGN_UP, {"email": "rot@example.com", "password": "user-password-1"})
    first = data["signUp"]["refreshToken"]
    rotated = (await server.client.execute(REFRESH, {"token": first}))["refreshToken"]
    assert rotated["__typename"] == "AuthPayload"
    second = rotated["refreshToken"]
    assert second != first
    # Reusing the first (already rotated) token is refused and revokes the family...
    reuse = (await server.client.execute(REFRESH, {"token": first}))["refreshToken"]
    assert reuse["__typename"] == "InvalidRefreshToken"
    assert "already used" in reuse["message"]
    # ...so the legitimate newer token stops working too.
    after = (await server.client.execute(REFRESH, {"token": second}))["refreshToken"]
    assert after["__typename"] == "InvalidRefreshToken"
    garbage = (await server.client.execute(REFRESH, {"token": "rt_garbage"}))["refreshToken"]
    assert garbage["__typename"] == "InvalidRefreshToken"
    async with server.state.sessionmaker() as session:
        tokens = (await session.execute(select(RefreshToken))).scalars().all()
    assert all(token.token_hash not in (first, second) for token in tokens), "stored hashed, not plain"


async def test_log_out_revokes_refresh_token(server: RunningServer) -> None:
    data = await server.client.execute(SIGN_UP, {"email": "out@example.com", "password": "user-password-1"})
    refresh = data["signUp"]["refreshToken"]
    client = server.client.with_token(data["signUp"]["accessToken"])
    assert await client.execute("mutation($t: String) { logOut(refreshToken: $t) { ok } }", {"t": refresh})
    after = (await server.client.execute(REFRESH, {"token": refresh}))["refreshToken"]
    assert after["__typename"] == "InvalidRefreshToken"


async def test_deactivated_user_tokens_stop_working_at_once(server: RunningServer) -> None:
    data = await server.client.execute(SIGN_UP, {"email": "gone@example.com", "password": "user-password-1"})
    client = server.client.with_token(data["signUp"]["accessToken"])
    assert (await client.execute(ME))["me"] is not None
    async with server.state.sessionmaker.begin() as session:
        await session.execute(update(User).where(User.email == "gone@example.com").values(is_active=False))
    assert (await client.execute(ME))["me"] is None
    refreshed = (await server.client.execute(REFRESH, {"token": data["signUp"]["refreshToken"]}))[
        "refreshToken"
    ]
    assert refreshed["__typename"] == "InvalidRefreshToken"
    login = await server.client.execute(LOG_IN, {"email": "gone@example.com", "password": "user-password-1"})
    assert login["logIn"]["__typename"] == "InvalidCredentials"


async def test_subscription_connection_authenticates_with_connection_init(server: RunningServer) -> None:
    client = await sign_up(server.client, "ws@example.com")
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        async with client.subscription_connection(protocol) as connection:
            operation = await connection.subscribe("subscription { me { email } }")
            results = [result async for result in connection.results(operation)]
            assert results[0]["data"]["me"]["email"] == "ws@example.com"
    with pytest.raises((GraphQLResponseError, websockets.ConnectionClosed)):
        async with client.subscription_connection("graphql-transport-ws", token="bad-token"):
            pass


async def test_unexpected_errors_are_masked_and_limits_apply(server: RunningServer) -> None:
    deep = "{ me { id } " + "".join(f"a{i}: me {{ id }} " for i in range(40)) + "}"
    body = await server.client.raw(deep)
    assert body.get("errors"), "alias limit must refuse 40 aliases"
    garbage = await server.client.http.post(
        server.base_url + "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400


async def test_healthz_and_graphiql(server: RunningServer) -> None:
    health = await server.client.http.get(server.base_url + "/healthz")
    assert health.status_code == 200
    assert health.json()["migrations"] == "current"
    ide = await server.client.http.get(server.base_url + "/graphql", headers={"accept": "text/html"})
    assert ide.status_code == 200
    assert "graphiql" in ide.text.lower()
    started = time.monotonic()
    assert time.monotonic() - started < 5
