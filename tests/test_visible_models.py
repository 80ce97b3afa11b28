"""Access changes reach open pages (issue 16): `visibleModels` sends the caller's model list
now and again whenever it changes — a grant, a revoke, a group membership, a role change, a
model created, renamed or deleted — over an already-open WebSocket; and across two API
processes on Redis. Black box: the admin acts through the GraphQL API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.conftest import RunningServer, sign_up
from tests.graphql_client import GraphQLClient, WebSocketSession
from tests.test_chat_redis import two_servers  # noqa: F401  (a fixture)

pytestmark = pytest.mark.asyncio

VISIBLE = "subscription { visibleModels(first: 100) { totalCount items { id name } } }"
CREATE_MODEL = """mutation($name: String!) { createModel(input: {name: $name}) {
  __typename ... on Model { id } } }"""
RENAME_MODEL = """mutation($id: UUID!, $name: String!) { updateModel(id: $id, input: {name: $name}) {
  __typename } }"""
DELETE_MODEL = "mutation($id: UUID!) { deleteModel(id: $id) { __typename } }"
GRANT = """mutation($m: UUID!, $u: UUID, $g: UUID) { grantModelAccess(modelId: $m, userId: $u, groupId: $g) {
  __typename } }"""
REVOKE = """mutation($m: UUID!, $u: UUID, $g: UUID) { revokeModelAccess(modelId: $m, userId: $u, groupId: $g) {
  __typename } }"""
CREATE_GROUP = (
    """mutation($name: String!) { createGroup(name: $name) { __typename ... on AccessGroup { id } } }"""
)
ADD_MEMBER = "mutation($g: UUID!, $u: UUID!) { addGroupMember(groupId: $g, userId: $u) { __typename } }"
REMOVE_MEMBER = "mutation($g: UUID!, $u: UUID!) { removeGroupMember(groupId: $g, userId: $u) { __typename } }"
PROMOTE = "mutation($u: UUID!) { promoteUser(userId: $u) { __typename } }"
DEACTIVATE = "mutation($u: UUID!) { deactivateUser(userId: $u) { __typename } }"
ME = "{ me { id } }"
# Far below the subscription's safety-net timer (RECHECK_SECONDS, 30 s): updates come from events.
WITHIN = 5.0


async def _create_model(admin: GraphQLClient, name: str) -> str:
    created = (await admin.execute(CREATE_MODEL, {"name": name}))["createModel"]
    assert created["__typename"] == "Model", created
    return str(created["id"])


async def _next_list(socket: WebSocketSession, operation: str) -> list[str]:
    message = await socket.next_message(timeout=WITHIN)
    assert message.get("id") == operation and message["type"] == "next", message
    page = message["payload"]["data"]["visibleModels"]
    names = [item["name"] for item in page["items"]]
    assert page["totalCount"] == len(names)
    return names


async def _quiet(socket: WebSocketSession, seconds: float = 0.5) -> None:
    """Nothing arrives: a change that does not alter the caller's list sends nothing."""
    with pytest.raises(TimeoutError):
        message = await socket.next_message(timeout=seconds)
        raise AssertionError(f"unexpected message {message}")


async def test_the_model_list_follows_grants_memberships_roles_and_models(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    user = await sign_up(server.client, f"viewer-{uuid.uuid4().hex[:6]}@example.com")
    user_id = (await user.execute(ME))["me"]["id"]
    tag = uuid.uuid4().hex[:6]
    alpha = await _create_model(superadmin, f"alpha-{tag}")
    async with (
        user.subscription_connection() as user_socket,
        superadmin.subscription_connection() as admin_socket,
    ):
        watching = await user_socket.subscribe(VISIBLE)
        admin_watching = await admin_socket.subscribe(VISIBLE)
        assert await _next_list(user_socket, watching) == []
        assert f"alpha-{tag}" in await _next_list(admin_socket, admin_watching)

        # A model created: the admin's open list gains it; the user's does not change.
        beta = await _create_model(superadmin, f"beta-{tag}")
        assert f"beta-{tag}" in await _next_list(admin_socket, admin_watching)
        await _quiet(user_socket)

        # Granted to the user directly, then through a group.
        await superadmin.execute(GRANT, {"m": alpha, "u": user_id})
        assert await _next_list(user_socket, watching) == [f"alpha-{tag}"]
        group = (await superadmin.execute(CREATE_GROUP, {"name": f"team-{tag}"}))["createGroup"]["id"]
        await superadmin.execute(GRANT, {"m": beta, "g": group})
        await _quiet(user_socket)  # not a member yet
        await superadmin.execute(ADD_MEMBER, {"g": group, "u": user_id})
        assert await _next_list(user_socket, watching) == [f"alpha-{tag}", f"beta-{tag}"]

        # Renamed: the new name, in place.
        await superadmin.execute(RENAME_MODEL, {"id": beta, "name": f"bravo-{tag}"})
        assert await _next_list(user_socket, watching) == [f"alpha-{tag}", f"bravo-{tag}"]

        # Revoked, removed from the group: gone without a reload.
        await superadmin.execute(REVOKE, {"m": alpha, "u": user_id})
        assert await _next_list(user_socket, watching) == [f"bravo-{tag}"]
        await superadmin.execute(REMOVE_MEMBER, {"g": group, "u": user_id})
        assert await _next_list(user_socket, watching) == []

        # Promoted: an administrator sees every model.
        await superadmin.execute(PROMOTE, {"u": user_id})
        promoted = await _next_list(user_socket, watching)
        assert {f"alpha-{tag}", f"bravo-{tag}"} <= set(promoted)

        # Deleted: gone from every open list.
        await superadmin.execute(DELETE_MODEL, {"id": alpha})
        assert f"alpha-{tag}" not in await _next_list(user_socket, watching)

        # Deactivated: the stream ends with UNAUTHENTICATED, and so does the socket's session.
        await superadmin.execute(DEACTIVATE, {"u": user_id})
        message = await user_socket.next_message(timeout=WITHIN)
        assert message["type"] in ("next", "error"), message
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED", message


async def test_a_grant_through_one_process_updates_a_list_open_on_another(two_servers: Any) -> None:  # noqa: F811
    _app_a, _app_b, client_a, client_b = two_servers
    from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, log_in

    admin_b = await log_in(client_b, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    user_a = await sign_up(client_a, f"remote-{uuid.uuid4().hex[:6]}@example.com")
    user_id = (await user_a.execute(ME))["me"]["id"]
    model = await _create_model(admin_b, f"shared-{uuid.uuid4().hex[:6]}")
    async with user_a.subscription_connection() as socket:
        watching = await socket.subscribe(VISIBLE)
        assert await _next_list(socket, watching) == []
        await asyncio.sleep(0.2)
        await admin_b.execute(GRANT, {"m": model, "u": user_id})
        assert len(await _next_list(socket, watching)) == 1
        await admin_b.execute(REVOKE, {"m": model, "u": user_id})
        assert await _next_list(socket, watching) == []
