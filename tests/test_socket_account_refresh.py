"""Queries and mutations on an already-open WebSocket run as the account is NOW.

A socket authenticates once, at connection_init. Without a re-read per operation, an
admin demoted after connecting could still create models over that socket, and a
deactivated user could still read. Each operation on a socket re-reads the account
(one primary-key read), so role and deactivation changes apply at the next operation.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gql_server.db.models import Role, User
from tests.conftest import RunningServer
from tests.factories import client_for, create_user
from tests.graphql_client import GraphQLClient, WebSocketSession

pytestmark = pytest.mark.asyncio(loop_scope="session")

CREATE_MODEL = """
mutation($name: String!) {
  createModel(input: {name: $name, provider: EXTRACTIVE}) { __typename }
}
"""


async def _single_result(socket: WebSocketSession, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    operation = await socket.subscribe(query, variables)
    while True:
        message = await socket.next_message(15)
        if message.get("id") != operation:
            continue
        if message["type"] == "next":
            return message["payload"]
        if message["type"] == "error":
            return {"errors": message["payload"]}
        raise AssertionError(f"unexpected {message}")


async def _set(server: RunningServer, user_id: uuid.UUID, **values: Any) -> None:
    async with server.state.sessionmaker.begin() as session:
        user = await session.get(User, user_id)
        assert user is not None
        for key, value in values.items():
            setattr(user, key, value)


async def test_demoted_admin_cannot_create_models_over_an_open_socket(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    admin_user = await create_user(server.state.sessionmaker, role=Role.ADMIN)
    admin = client_for(server.client, server.state.tokens, admin_user)
    async with admin.subscription_connection("graphql-transport-ws") as socket:
        before = await _single_result(socket, CREATE_MODEL, {"name": "made while admin"})
        assert before["data"]["createModel"]["__typename"] == "Model", before
        demoted = await superadmin.execute(
            "mutation($id: UUID!) { demoteUser(userId: $id) { __typename } }", {"id": str(admin_user.id)}
        )
        assert demoted["demoteUser"]["__typename"] == "User"
        after = await _single_result(socket, CREATE_MODEL, {"name": "made after demotion"})
        assert after.get("data") is None or after["data"].get("createModel") is None, after
        assert after["errors"][0]["extensions"]["code"] == "FORBIDDEN", after
        models = await superadmin.execute("{ models(first: 100) { items { name } } }")
        names = {item["name"] for item in models["models"]["items"]}
        assert "made after demotion" not in names


async def test_deactivated_user_cannot_query_over_an_open_socket(server: RunningServer) -> None:
    user = await create_user(server.state.sessionmaker)
    client = client_for(server.client, server.state.tokens, user)
    async with client.subscription_connection("graphql-transport-ws") as socket:
        before = await _single_result(socket, "{ me { id } }", {})
        assert before["data"]["me"]["id"] == str(user.id)
        # Deactivated directly in the database: the socket must not rely on any event.
        await _set(server, user.id, is_active=False)
        after = await _single_result(socket, "{ me { id } }", {})
        assert after["data"]["me"] is None, after
        listed = await _single_result(socket, "{ models(first: 10) { items { id } } }", {})
        assert listed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", listed
