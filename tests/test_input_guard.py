"""Strings PostgreSQL refuses (NUL, lone surrogates) are refused at the edge, for every field.

The schema is the source of truth: every String/ID position of every argument of every
Query and Mutation field (nested input fields included) is found by introspection and gets
a NUL and a lone surrogate, as a variable and as an inline literal, over HTTP, as the
superadmin (so authorization lets every field through to its arguments). Each answer must
be an `InvalidInput` naming the argument (fields whose result union has one) or a
BAD_USER_INPUT error, and never INTERNAL_SERVER_ERROR or SQL text. Before the fix 41 of
the 91 probed arguments reached PostgreSQL and answered INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    get_named_type,
)

from gql_server.kit.input_guard import guard_string_arguments
from gql_server.schema import build_schema
from tests.graphql_client import GraphQLClient

NUL = "before\u0000after"
SURROGATE = "before\ud800after"
STRING_SCALARS = {"String", "ID"}


class EnumLiteral(str):
    """An enum value: a bare name in an inline literal."""


@dataclass(frozen=True)
class Probe:
    kind: str  # "query" | "mutation"
    field: str
    argument: str  # the root argument the bad string goes into
    path: tuple[str, ...]  # inside the argument (input object fields)
    expected_name: str  # how InvalidInput must name it
    typed: bool  # the field's result is a union with InvalidInput

    @property
    def label(self) -> str:
        return f"{self.kind}.{self.field}({'.'.join((self.argument, *self.path))})"


def _unwrap(type_: Any) -> Any:
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        type_ = type_.of_type
    return type_


def _string_paths(type_: GraphQLInputType, seen: frozenset[str] = frozenset()) -> list[tuple[str, ...]]:
    named = _unwrap(type_)
    if isinstance(named, GraphQLScalarType):
        return [()] if named.name in STRING_SCALARS else []
    if isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        paths: list[tuple[str, ...]] = []
        for name, field in named.fields.items():
            paths.extend((name, *rest) for rest in _string_paths(field.type, seen | {named.name}))
        return paths
    return []


def _typed(field: GraphQLField) -> bool:
    named = _unwrap(field.type)
    return isinstance(named, GraphQLUnionType) and any(t.name == "InvalidInput" for t in named.types)


def all_probes() -> list[Probe]:
    schema = build_schema()._schema
    probes = []
    for kind, root_name in (("query", "Query"), ("mutation", "Mutation")):
        root = schema.get_type(root_name)
        assert isinstance(root, GraphQLObjectType)
        for field_name, field in root.fields.items():
            for argument, definition in field.args.items():
                for path in _string_paths(definition.type):
                    expected = ".".join(path if argument == "input" else (argument, *path))
                    probes.append(Probe(kind, field_name, argument, path, expected, _typed(field)))
    return probes


PROBES = all_probes()


def _dummy(type_: GraphQLInputType) -> Any:
    """A valid value for a required argument or input field."""
    if isinstance(type_, GraphQLNonNull):
        return _dummy(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [_dummy(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return EnumLiteral(next(iter(type_.values)))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: _dummy(field.type)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    assert isinstance(type_, GraphQLScalarType), type_
    return {
        "UUID": str(uuid.uuid4()),
        "Int": 1,
        "Float": 0.5,
        "Boolean": False,
        "String": "ok",
        "ID": "ok",
        "Upload": None,
    }.get(type_.name, "ok")


def _literal(value: Any) -> str:
    if isinstance(value, EnumLiteral):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's \uXXXX escapes are GraphQL string escapes too
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_literal(item)}" for key, item in value.items()) + "}"
    raise TypeError(value)


def _set(value: Any, path: tuple[str, ...], bad: str) -> Any:
    if not path:
        return bad
    copy = dict(value or {})
    copy[path[0]] = _set(copy.get(path[0]), path[1:], bad)
    return copy


def _selection(field: GraphQLField) -> str:
    named = get_named_type(field.type)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return ""
    if _typed(field):
        return "{ __typename ... on InvalidInput { message fieldErrors { field message } } }"
    return "{ __typename }"


@dataclass
class Request:
    document: str
    variables: dict[str, Any]
    upload_variable: str | None = None


def build_request(probe: Probe, bad: str, *, inline: bool) -> Request:
    schema = build_schema()._schema
    root = schema.get_type("Query" if probe.kind == "query" else "Mutation")
    assert isinstance(root, GraphQLObjectType)
    field = root.fields[probe.field]
    declarations, arguments, variables = [], [], {}
    upload_variable = None
    for name, definition in field.args.items():
        if name == probe.argument:
            value = _set(_dummy(definition.type) if probe.path else None, probe.path, bad)
        elif isinstance(definition.type, GraphQLNonNull):
            value = _dummy(definition.type)
        else:
            continue
        if _unwrap(definition.type).name == "Upload":
            upload_variable = name
            declarations.append(f"${name}: {definition.type}")
            arguments.append(f"{name}: ${name}")
            variables[name] = None
            continue
        if inline:
            arguments.append(f"{name}: {_literal(value)}")
        else:
            declarations.append(f"${name}: {definition.type}")
            arguments.append(f"{name}: ${name}")
            variables[name] = value
    header = f"{probe.kind} Probe" + (f"({', '.join(declarations)})" if declarations else "")
    document = f"{header} {{ {probe.field}({', '.join(arguments)}) {_selection(field)} }}"
    return Request(document, variables, upload_variable)


async def send(client: GraphQLClient, request: Request) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"}
    if request.upload_variable is not None:
        return await client.upload(
            request.document, request.variables, request.upload_variable, "probe.txt", b"probe text\n"
        )
    # json.dumps escapes the lone surrogate (httpx's own encoder would fail on it).
    body = json.dumps({"query": request.document, "variables": request.variables})
    response = await client.http.post(client.base_url + "/graphql", content=body, headers=headers)
    assert response.status_code in (200, 400), response.text
    return response.json()


def assert_never_internal(probe: Probe, body: dict[str, Any]) -> None:
    dumped = json.dumps(body)
    for marker in (
        "INTERNAL_SERVER_ERROR",
        "SQL",
        "INSERT",
        "SELECT",
        "asyncpg",
        "sqlalchemy",
        "UnicodeEncodeError",
    ):
        assert marker not in dumped, f"{probe.label}: {marker} in {dumped[:600]}"


def assert_refused(probe: Probe, body: dict[str, Any]) -> None:
    assert_never_internal(probe, body)
    errors = body.get("errors") or []
    if probe.typed and not errors:
        value = (body.get("data") or {}).get(probe.field)
        assert value and value["__typename"] == "InvalidInput", f"{probe.label}: {body}"
        assert [error["field"] for error in value["fieldErrors"]] == [probe.expected_name], (
            f"{probe.label}: {body}"
        )
        return
    codes = [(error.get("extensions") or {}).get("code") for error in errors]
    assert codes == ["BAD_USER_INPUT"], f"{probe.label}: {body}"
    assert errors[0]["message"].startswith(probe.expected_name + " "), f"{probe.label}: {body}"


def test_the_probes_cover_the_known_string_arguments() -> None:
    labels = {probe.label for probe in PROBES}
    # A few arguments of each domain the original finding named; the list itself comes from the schema.
    for expected in (
        "mutation.signUp(email)",
        "mutation.logIn(password)",
        "mutation.createModel(input.name)",
        "mutation.updateModel(input.systemPrompt)",
        "mutation.sendMessage(content)",
        "mutation.renameChatSession(title)",
        "mutation.uploadDocument(title)",
        "query.search(query)",
        "query.users(search)",
    ):
        assert expected in labels, sorted(labels)
    assert len(PROBES) >= 40


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
async def test_every_string_argument_refuses_bad_strings_in_variables(
    superadmin: GraphQLClient, bad: str
) -> None:
    problems = []
    for probe in PROBES:
        body = await send(superadmin, build_request(probe, bad, inline=False))
        try:
            assert_refused(probe, body)
        except AssertionError as error:
            problems.append(str(error)[:400])
    assert not problems, f"{len(problems)} of {len(PROBES)} arguments:\n" + "\n".join(problems)


@pytest.mark.asyncio
async def test_every_string_argument_refuses_bad_strings_in_inline_literals(
    superadmin: GraphQLClient,
) -> None:
    problems = []
    for probe in PROBES:
        # "\u0000" inside the document: a valid GraphQL string escape, refused by the guard.
        body = await send(superadmin, build_request(probe, NUL, inline=True))
        try:
            assert_refused(probe, body)
        except AssertionError as error:
            problems.append(str(error)[:400])
        # graphql-core's lexer refuses a lone surrogate escape itself (a syntax error).
        body = await send(superadmin, build_request(probe, SURROGATE, inline=True))
        try:
            assert_never_internal(probe, body)
            assert body.get("errors"), body
        except AssertionError as error:
            problems.append(str(error)[:400])
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


@pytest.mark.asyncio
async def test_twenty_concurrent_bad_requests_are_all_refused(superadmin: GraphQLClient) -> None:
    chosen = [probe for probe in PROBES if probe.kind == "mutation" and probe.argument != "file"][:20]
    assert len(chosen) == 20
    bodies = await asyncio.gather(
        *(send(superadmin, build_request(probe, NUL, inline=False)) for probe in chosen)
    )
    for probe, body in zip(chosen, bodies, strict=True):
        assert_refused(probe, body)


@pytest.mark.asyncio
async def test_bad_strings_over_websocket_are_refused(superadmin: GraphQLClient) -> None:
    """graphql-transport-ws carries queries and mutations too (the legacy graphql-ws protocol
    runs subscriptions only, and no subscription takes a string today: see the next test)."""
    chosen = [
        probe
        for probe in PROBES
        if probe.label
        in (
            "mutation.createGroup(name)",
            "mutation.sendMessage(content)",
            "query.search(query)",
            "query.users(search)",
        )
    ]
    assert len(chosen) == 4
    for _round in range(2):
        async with superadmin.subscription_connection() as socket:
            for probe in chosen:
                for bad in (NUL, SURROGATE):
                    request = build_request(probe, bad, inline=False)
                    operation = await socket.subscribe(request.document, request.variables)
                    message = await socket.next_message(timeout=10)
                    assert message.get("id") == operation, message
                    payload = message.get("payload")
                    body = payload if isinstance(payload, dict) else {"errors": payload}
                    assert_refused(probe, body)
                    if message["type"] in ("next", "data"):
                        await socket.next_message(timeout=10)  # complete


@pytest.mark.asyncio
async def test_subscription_arguments_are_checked_before_subscribing() -> None:
    """No root Subscription field takes a string today; a new one is covered all the same."""
    subscribed: list[str] = []

    @strawberry.type
    class Query:
        ok: bool = True

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def echo(self, word: str) -> AsyncIterator[str]:
            subscribed.append(word)
            yield word

    schema = strawberry.Schema(query=Query, subscription=Subscription)
    assert guard_string_arguments(schema._schema) == 1
    stream = await schema.subscribe('subscription { echo(word: "a\\u0000b") }')
    results = [result async for result in stream]  # type: ignore[union-attr]
    assert subscribed == []
    assert results[0].errors and results[0].errors[0].extensions == {"code": "BAD_USER_INPUT"}
    stream = await schema.subscribe('subscription { echo(word: "fine") }')
    results = [result async for result in stream]  # type: ignore[union-attr]
    assert subscribed == ["fine"] and results[0].data == {"echo": "fine"}


@pytest.mark.asyncio
async def test_an_upload_whose_file_name_holds_a_nul_is_refused(superadmin: GraphQLClient) -> None:
    """The file name comes from the multipart header (httpx would percent-encode a NUL, so
    the body is written by hand); it used to reach the INSERT and answer INTERNAL_SERVER_ERROR."""
    upload = next(probe for probe in PROBES if probe.label == "mutation.uploadDocument(title)")
    request = build_request(upload, "fine title", inline=False)
    boundary = "ragql-probe-boundary"
    operations = json.dumps({"query": request.document, "variables": request.variables})
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{operations}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{{"0": ["variables.file"]}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="a'
        ).encode()
        + b'\x00b.txt"\r\nContent-Type: text/plain\r\n\r\nsome probe text\r\n'
        + f"--{boundary}--\r\n".encode()
    )
    response = await superadmin.http.post(
        superadmin.base_url + "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {superadmin.token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    answer = response.json()
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(answer), answer
    value = answer["data"]["uploadDocument"]
    assert value["__typename"] == "InvalidInput" and value["fieldErrors"][0]["field"] == "file", answer
