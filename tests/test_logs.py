"""The real `ragql serve` log, read like an attacker with access to it would.

Before the fix: every GraphQL error (FORBIDDEN, UNAUTHENTICATED, validation) was an ERROR
with a traceback and the query's source, so inline passwords landed in the log (60
tracebacks in one probe run), and signed download tokens appeared in access-log URLs.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path

import httpx
import pytest

from gql_server.logging_setup import RedactSecretsFilter
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient, post_graphql
from tests.serve_process import ServeProcess

INLINE_PASSWORD = "inline-secret-pw-" + uuid.uuid4().hex[:8]
VARIABLE_PASSWORD = "variable-secret-pw-" + uuid.uuid4().hex[:8]
FAKE_TOKEN = "fake-signed-token-" + uuid.uuid4().hex[:8]


def _log_in(base_url: str, email: str, password: str) -> str:
    body = post_graphql(
        base_url,
        "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { __typename ... on AuthPayload { accessToken } } }",
        {"e": email, "p": password},
    )
    return str(body["data"]["logIn"]["accessToken"])


def test_the_server_log_holds_no_secret_no_source_and_no_traceback_for_client_errors(
    database_url: str, tmp_path: Path
) -> None:
    serve = ServeProcess(
        tmp_path / "data",
        env={
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            "SUPERADMIN_EMAIL": SUPERADMIN_EMAIL,
            "SUPERADMIN_PASSWORD": SUPERADMIN_PASSWORD,
            "LOG_LEVEL": "INFO",
        },
    ).start()
    try:
        base = serve.base_url
        # Anonymous: an inline password next to a field that needs a token (UNAUTHENTICATED).
        for _ in range(5):
            body = post_graphql(
                base,
                f'mutation Probe {{ logIn(email: "nobody@example.com", password: "{INLINE_PASSWORD}") {{ __typename }}'
                ' createGroup(name: "g") { __typename } }',
            )
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
        # The same with the password in a variable.
        body = post_graphql(
            base,
            'mutation WithVariables($p: String!) { logIn(email: "nobody@example.com", password: $p) { __typename }'
            ' createGroup(name: "g") { __typename } }',
            {"p": VARIABLE_PASSWORD},
        )
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
        # A validation error that quotes a value (an inline password of the wrong type).
        body = post_graphql(base, f'query {{ me(password: "{INLINE_PASSWORD}") {{ id }} }}')
        assert body["errors"], body
        # Signed in as a plain user: admin-only fields are FORBIDDEN.
        email = f"plain-{uuid.uuid4().hex[:6]}@example.com"
        signed_up = post_graphql(
            base,
            "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { __typename } }",
            {"e": email, "p": VARIABLE_PASSWORD},
        )
        assert signed_up["data"]["signUp"]["__typename"] == "AuthPayload", signed_up
        user_token = _log_in(base, email, VARIABLE_PASSWORD)
        for _ in range(5):
            body = post_graphql(base, "query AdminOnly { users { totalCount } }", token=user_token)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        # Download URLs carry a signed token in the query string.
        for name in ("token", "access_token"):
            response = httpx.get(f"{base}/files/documents/{uuid.uuid4()}?{name}={FAKE_TOKEN}&x=1", timeout=30)
            assert response.status_code in (401, 403, 404), response.status_code
    finally:
        serve.stop()
    log = serve.output()

    for secret in (INLINE_PASSWORD, VARIABLE_PASSWORD, FAKE_TOKEN, user_token, SUPERADMIN_PASSWORD):
        assert secret not in log, f"{secret[:24]}… is in the log:\n{log[-3000:]}"
    # No query source: graphql-core's error printing quotes the document's lines.
    for source in ("createGroup(name", "logIn(email", "users { totalCount"):
        assert source not in log, f"query source {source!r} in the log:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-5000:]
    # uvicorn's `color_message` (its message with ANSI colours) is not appended to our lines.
    assert "color_message" not in log and "\x1b[" not in log, [
        line for line in log.splitlines() if "color" in line
    ]
    lines = log.splitlines()
    forbidden = [line for line in lines if "client error FORBIDDEN" in line]
    unauthenticated = [line for line in lines if "client error UNAUTHENTICATED" in line]
    assert len(forbidden) == 5 and len(unauthenticated) == 6, log[-3000:]
    assert all(" INFO " in line for line in forbidden + unauthenticated), forbidden + unauthenticated
    # Operation names and the variables' shape are logged; values are not.
    assert any("WithVariables" in line and "'p': 'str'" in line for line in unauthenticated), unauthenticated
    assert any("AdminOnly" in line for line in forbidden), forbidden
    # The access log still shows the requests, with the token redacted.
    access = [line for line in lines if "/files/documents/" in line]
    assert len(access) == 2 and all(
        re.search(r"(access_)?token=\[redacted\]&x=1", line) for line in access
    ), access
    assert not any(" ERROR " in line for line in lines if "client error" in line)


def test_the_redaction_filter_also_covers_json_lines() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:1",
            "GET",
            f"/files/documents/1?token={FAKE_TOKEN}&access_token={FAKE_TOKEN}",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactSecretsFilter().filter(record)
    message = record.getMessage()
    assert FAKE_TOKEN not in message and message.count("[redacted]") == 2, message
    assert json.dumps(message)


@pytest.mark.asyncio
async def test_the_ready_line_of_a_document_without_pages_names_no_pages(
    server: RunningServer, superadmin: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    model = await create_model(server.state.sessionmaker)
    with caplog.at_level(logging.INFO, logger="workers.ingestion"):
        document_id = await upload_document(
            superadmin, model.id, "parts.csv", b"part,price\nQX-1,0.40\nQX-2,0.05\n"
        )
        assert (await wait_for_final(superadmin, document_id))["status"] == "READY"
    ready = [record.getMessage() for record in caplog.records if "READY" in record.getMessage()]
    assert ready and all("None" not in line and "pages" not in line for line in ready), ready


def test_uvicorns_color_message_is_not_printed() -> None:
    from gql_server.logging_setup import JsonFormatter, KeyValueFormatter

    record = logging.makeLogRecord(
        {
            "name": "uvicorn.error",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "Uvicorn running on %s",
            "args": ("http://127.0.0.1:8000",),
            "color_message": "Uvicorn running on \x1b[1m%s\x1b[0m",
        }
    )
    for formatter in (KeyValueFormatter(), JsonFormatter()):
        line = formatter.format(record)
        assert "Uvicorn running on http://127.0.0.1:8000" in line and "color_message" not in line, line
        assert "\x1b" not in line and "\\u001b" not in line, line


def test_an_operation_completed_by_the_client_first_is_forgotten_without_a_keyerror() -> None:
    """The SPA stops a stream on its final event while the stream ends on its own: strawberry's
    graphql-transport-ws handler then forgets the id twice. Before the fix the second `del`
    raised KeyError: two 'Exception in worker task' tracebacks in the log per chat."""
    from gql_server.graphql_view import RagqlTransportWSHandler

    handler = RagqlTransportWSHandler.__new__(RagqlTransportWSHandler)
    handler.operations = {}
    handler.forget_id("already-completed-by-the-client")  # no KeyError
