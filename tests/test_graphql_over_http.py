"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/), probed with plain
httpx requests against the real app. The graphql-http audit suite (tests/http_audit, run by
`make test`) covers the same ground from a third-party client; these tests pin the
behaviours the audit does not check (two operations, methods, 406/415, subscriptions)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio

GRAPHQL_RESPONSE = "application/graphql-response+json"
BOTH = f"{GRAPHQL_RESPONSE}, application/json;q=0.9"


async def _post(
    server: RunningServer, body: object, accept: str | None = GRAPHQL_RESPONSE, **headers: str
) -> httpx.Response:
    http = server.client.http
    request = http.build_request(
        "POST",
        server.base_url + "/graphql",
        json=body,
        headers={**({"accept": accept} if accept else {}), **headers},
    )
    if accept is None:
        del request.headers["accept"]
    return await http.send(request)


def _media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


async def test_graphql_response_json_is_answered_when_asked_for(server: RunningServer) -> None:
    ok = await _post(server, {"query": "{ __typename }"})
    assert ok.status_code == 200
    assert _media_type(ok) == GRAPHQL_RESPONSE
    assert "charset=utf-8" in ok.headers["content-type"]
    assert ok.json() == {"data": {"__typename": "Query"}}
    # What Apollo Client and urql send.
    for accept in (BOTH, f"{GRAPHQL_RESPONSE}, application/json", "application/graphql-response+json;q=1"):
        assert (
            _media_type(await _post(server, {"query": "{ __typename }"}, accept=accept)) == GRAPHQL_RESPONSE
        )
    # Legacy clients keep application/json (and 200 on request errors, with data: null).
    for accept in ("application/json", "*/*", f"application/json, {GRAPHQL_RESPONSE};q=0.5"):
        legacy = await _post(server, {"query": "{ nope }"}, accept=accept)
        assert legacy.status_code == 200 and _media_type(legacy) == "application/json", (accept, legacy.text)
        assert legacy.json()["data"] is None and legacy.json()["errors"]
    # No Accept at all: the draft's default since 2025-01-01 is application/graphql-response+json.
    bare = await _post(server, {"query": "{ __typename }"}, accept=None)
    assert bare.status_code == 200 and _media_type(bare) == GRAPHQL_RESPONSE
    # Nothing acceptable: 406, said in JSON.
    refused = await _post(server, {"query": "{ __typename }"}, accept="text/plain")
    assert refused.status_code == 406 and refused.json()["errors"][0]["message"]


async def test_request_errors_are_4xx_without_data(server: RunningServer) -> None:
    cases = {
        "parse": {"query": "{"},
        "validation": {"query": "{ 8f31403dfe404bccbb0e835f2629c6a7 }"},
        "variable coercion": {"query": "query Q($id: ID!) { __typename }", "variables": {"id": None}},
        "depth/alias limits": {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"},
    }
    for name, body in cases.items():
        response = await _post(server, body)
        assert response.status_code == 400, (name, response.text)
        assert _media_type(response) == GRAPHQL_RESPONSE
        result = response.json()
        assert "data" not in result and result["errors"], (name, result)


async def test_two_operations_without_operation_name_are_a_request_error(server: RunningServer) -> None:
    email = f"twice-{uuid.uuid4().hex[:8]}@example.com"
    document = (
        f'mutation SignUp {{ signUp(email: "{email}", password: "two-ops-password-1") {{ __typename }} }}'
        " query Hello { __typename }"
    )
    for accept, status in ((GRAPHQL_RESPONSE, 400), ("application/json", 200)):
        response = await _post(server, {"query": document}, accept=accept)
        assert response.status_code == status, response.text
        errors = response.json()["errors"]
        assert "operation name" in errors[0]["message"].lower(), errors
        assert "data" not in response.json() or response.json()["data"] is None
    # Nothing ran: the mutation (the first operation) did not sign anybody up.
    picked = await _post(server, {"query": document, "operationName": "SignUp"})
    assert picked.json()["data"]["signUp"]["__typename"] == "AuthPayload", picked.text
    # With a name, the other operation runs alone.
    hello = await _post(server, {"query": document, "operationName": "Hello"})
    assert hello.status_code == 200 and hello.json() == {"data": {"__typename": "Query"}}


async def test_unknown_operation_name_is_a_json_graphql_error(server: RunningServer) -> None:
    body = {"query": "query A { __typename }", "operationName": "Z"}
    for accept, status in ((GRAPHQL_RESPONSE, 400), ("application/json", 200)):
        response = await _post(server, body, accept=accept)
        assert response.status_code == status, response.text
        assert _media_type(response) == accept
        assert 'Unknown operation named "Z"' in response.json()["errors"][0]["message"]


async def test_empty_get_parameters_mean_absent(server: RunningServer) -> None:
    response = await server.client.http.get(
        server.base_url + "/graphql",
        params={"query": "{ __typename }", "operationName": "", "variables": "", "extensions": ""},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}
    no_query = await server.client.http.get(
        server.base_url + "/graphql", params={"query": ""}, headers={"accept": GRAPHQL_RESPONSE}
    )
    assert no_query.status_code == 400 and no_query.json()["errors"], no_query.text


async def test_other_methods_get_405_with_allow(server: RunningServer) -> None:
    for method in ("PUT", "PATCH", "DELETE"):
        response = await server.client.http.request(
            method, server.base_url + "/graphql", json={"query": "{ __typename }"}
        )
        assert response.status_code == 405, (method, response.status_code, response.text[:200])
        assert response.headers["allow"] == "GET, POST"
        assert response.json()["errors"][0]["message"]


async def test_mutations_over_get_are_405(server: RunningServer) -> None:
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        response = await server.client.http.get(
            server.base_url + "/graphql",
            params={"query": 'mutation { logIn(email: "a@b.c", password: "x") { __typename } }'},
            headers={"accept": accept},
        )
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == "POST"
        assert _media_type(response) == accept
        assert "POST" in response.json()["errors"][0]["message"]


async def test_subscriptions_over_http_get_a_clear_error(server: RunningServer) -> None:
    document = f'subscription {{ messageStream(messageId: "{uuid.uuid4()}") {{ __typename }} }}'
    for accept, status in ((GRAPHQL_RESPONSE, 400), ("application/json", 200)):
        response = await _post(server, {"query": document}, accept=accept)
        assert response.status_code == status, response.text
        error = response.json()["errors"][0]
        assert "WebSocket" in error["message"], error
        assert error.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR"
    got = await server.client.http.get(
        server.base_url + "/graphql", params={"query": "subscription { me { id } }"}
    )
    assert got.status_code == 200 and "WebSocket" in got.json()["errors"][0]["message"], got.text


async def test_wrong_or_missing_content_type_is_415(server: RunningServer) -> None:
    http = server.client.http
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/graphql", None):
        request = http.build_request(
            "POST",
            server.base_url + "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"accept": GRAPHQL_RESPONSE, **({"content-type": content_type} if content_type else {})},
        )
        response = await http.send(request)
        assert response.status_code == 415, (content_type, response.status_code, response.text)
        assert _media_type(response) == GRAPHQL_RESPONSE
        assert "application/json" in response.json()["errors"][0]["message"]
    # A JSON body in another charset than UTF-8 is refused the same way.
    latin = await _post(
        server, {"query": "{ __typename }"}, **{"content-type": "application/json; charset=latin-1"}
    )
    assert latin.status_code == 415, latin.text
    # JSON with an explicit UTF-8 charset and multipart (uploads) still pass.
    utf8 = await _post(
        server, {"query": "{ __typename }"}, **{"content-type": "application/json; charset=UTF-8"}
    )
    assert utf8.status_code == 200, utf8.text
