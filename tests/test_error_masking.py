"""Unexpected errors are masked whatever the concurrency; a dead database is said so.

The database raises real errors here: a trigger on `access_groups` fails the INSERT of
`createGroup` with a message that must never reach a client (and, in the second test,
terminates its own connection, which is what "the database went away" looks like to the
driver). Before the fix, the masking extension was one instance shared by every request:
concurrent requests overwrote its `execution_context`, and most of 20 concurrent failing
requests answered with the unmasked driver error and its SQL statement.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from gql_server.db.availability import DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE
from tests.conftest import RunningServer
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

SECRET = "trigger-secret-detail"
CREATE_GROUP = """
mutation CreateGroup($name: String!) {
  createGroup(name: $name) { __typename ... on AccessGroup { id name } ... on Error { message } }
}
"""
LEAK_MARKERS = (SECRET, "SQL", "INSERT", "access_groups", "Traceback", "asyncpg", "sqlalchemy")


async def _install_trigger(server: RunningServer) -> None:
    async with server.state.engine.begin() as connection:
        await connection.execute(
            text(
                f"""
                CREATE FUNCTION ragql_test_explode() RETURNS trigger AS $$
                BEGIN
                  IF NEW.name LIKE 'explode%' THEN
                    RAISE EXCEPTION '{SECRET} for %', NEW.name;
                  END IF;
                  IF NEW.name LIKE 'vanish%' THEN
                    PERFORM pg_terminate_backend(pg_backend_pid());
                  END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        await connection.execute(
            text(
                "CREATE TRIGGER ragql_test_explode BEFORE INSERT ON access_groups "
                "FOR EACH ROW EXECUTE FUNCTION ragql_test_explode()"
            )
        )


def _assert_masked(body: dict[str, Any]) -> str:
    dumped = json.dumps(body)
    for marker in LEAK_MARKERS:
        assert marker not in dumped, f"{marker!r} leaked: {dumped[:800]}"
    errors = body.get("errors") or []
    assert len(errors) == 1, body
    extensions = errors[0].get("extensions") or {}
    assert extensions.get("code") == "INTERNAL_SERVER_ERROR", body
    request_id = extensions.get("requestId")
    assert isinstance(request_id, str) and request_id and request_id in errors[0]["message"], body
    return request_id


async def test_unexpected_errors_stay_masked_under_concurrency(
    server: RunningServer, superadmin: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    await _install_trigger(server)
    caplog.set_level(logging.INFO, logger="gql_server.errors")
    # Some requests succeed while others fail, so results of both kinds are in flight at once.
    failing = [superadmin.raw(CREATE_GROUP, {"name": f"explode {index}"}) for index in range(20)]
    passing = [superadmin.raw(CREATE_GROUP, {"name": f"fine {uuid.uuid4().hex[:8]}"}) for _ in range(10)]
    bodies = await asyncio.gather(*failing, *passing)
    request_ids = [_assert_masked(body) for body in bodies[:20]]
    # Each answer carries its own request's id.
    assert len(set(request_ids)) == 20
    for body in bodies[20:]:
        assert not body.get("errors") and body["data"]["createGroup"]["__typename"] == "AccessGroup", body
    # The log has each one as an ERROR with its traceback, under the id the client saw.
    logged = {
        request_id: [
            record
            for record in caplog.records
            if record.name == "gql_server.errors" and request_id in record.getMessage()
        ]
        for request_id in request_ids
    }
    for request_id, records in logged.items():
        assert len(records) == 1, (request_id, [record.getMessage() for record in records])
        assert records[0].levelno == logging.ERROR and records[0].exc_info, records[0].getMessage()


async def test_unexpected_errors_over_websocket_are_masked(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    """graphql-transport-ws runs queries and mutations too; their results go through the stream path."""
    await _install_trigger(server)
    for _ in range(3):
        async with superadmin.subscription_connection() as socket:
            operation = await socket.subscribe(CREATE_GROUP, {"name": "explode over ws"})
            message = await socket.next_message(timeout=10)
            await socket.stop(operation)
        assert message["type"] in ("next", "error"), message
        payload = message.get("payload")
        body = payload if isinstance(payload, dict) else {"errors": payload}
        _assert_masked(body)


async def test_an_unavailable_database_is_a_public_error(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    await _install_trigger(server)
    bodies = await asyncio.gather(*(superadmin.raw(CREATE_GROUP, {"name": f"vanish {i}"}) for i in range(5)))
    for body in bodies:
        dumped = json.dumps(body)
        for marker in LEAK_MARKERS:
            assert marker not in dumped, f"{marker!r} leaked: {dumped[:800]}"
        errors = body.get("errors") or []
        assert len(errors) == 1, body
        assert errors[0]["extensions"]["code"] == DATABASE_UNAVAILABLE_CODE, body
        assert errors[0]["message"] == DATABASE_UNAVAILABLE_MESSAGE, body
    # The pool drops the dead connections: the next request works.
    body = await superadmin.raw(CREATE_GROUP, {"name": f"after {uuid.uuid4().hex[:6]}"})
    assert not body.get("errors"), body


async def test_a_query_over_the_legacy_protocol_is_a_clear_error(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    """The legacy graphql-ws protocol runs subscriptions only; a query there is the client's
    mistake and says so (it was masked as INTERNAL_SERVER_ERROR)."""
    async with superadmin.subscription_connection(protocol="graphql-ws") as socket:
        await socket.subscribe("query { me { id } }")
        message = await socket.next_message(timeout=10)
    payload = message.get("payload")
    errors = payload if isinstance(payload, list) else (payload or {}).get("errors") or [payload]
    dumped = json.dumps(message)
    assert "INTERNAL_SERVER_ERROR" not in dumped, dumped
    assert "queries are not allowed" in dumped, dumped
    assert errors, message


# ------------------------------------------------------------ provider failures in answers

UPSTREAM_BODY = "upstream-secret-body: internal stack frame at /srv/llm/handler.py line 42"


async def _failing_answer(
    server: RunningServer, fake: Any, role: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    from gql_server.db.models import ProviderKind
    from tests.chat_support import chat_world, send_ok, start_session, stored_message, stream_all
    from tests.factories import client_for, create_user

    world = await chat_world(
        server, provider=ProviderKind.OPENAI_COMPATIBLE, base_url=fake.base_url, llm_model_name="fake-model"
    )
    client = world.client
    if role is not None:
        asker = await create_user(server.state.sessionmaker, role=role)
        client = client_for(server.client, server.state.tokens, asker)
    session_id = await start_session(client, world.model.id)
    message_id = await send_ok(client, session_id, "Anything?")
    events = await stream_all(client, message_id)
    return events[-1], await stored_message(client, message_id)


async def test_a_failing_provider_shows_users_a_reference_not_its_url_or_body(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    from gql_server.db.models import Role
    from tests.fake_llm_servers import FakeBehaviour, FakeOpenAIServer

    fake = FakeOpenAIServer(FakeBehaviour(forced_status=500, forced_body=UPSTREAM_BODY))
    with caplog.at_level(logging.INFO):
        async with fake.serve():
            error, stored = await _failing_answer(server, fake, None)
            admin_error, admin_stored = await _failing_answer(server, fake, Role.ADMIN)
    address = fake.base_url.split("://", 1)[1].rstrip("/")
    for text_seen in (error["message"], stored["error"]):
        assert address not in text_seen and "upstream-secret-body" not in text_seen, text_seen
        assert "HTTP 500" not in text_seen, text_seen
    match = re.search(r"\(reference ([0-9a-f]+)\); an administrator can see the details\.", error["message"])
    assert match, error["message"]
    assert stored["error"] == error["message"]
    # The log holds the detail under that reference (URL and the provider's words).
    detail_lines = [record.getMessage() for record in caplog.records if match.group(1) in record.getMessage()]
    assert any(address in line and "upstream-secret-body" in line for line in detail_lines), detail_lines
    # An administrator asking the model sees the detail in their own answer, with the reference.
    assert address in admin_error["message"] and "reference" in admin_error["message"], admin_error
    assert admin_stored["error"] == admin_error["message"]
