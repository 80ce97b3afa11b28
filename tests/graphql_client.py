"""A small GraphQL client for tests: HTTP (httpx) and graphql-transport-ws / graphql-ws (websockets).

`post_graphql` and `post_graphql_data` are the synchronous one-request forms, for tests that
drive a `ragql serve` process without an event loop."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

from tests import log_secrets


class GraphQLResponseError(AssertionError):
    pass


def post_graphql(
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    *,
    timeout: float = 60,
) -> dict[str, Any]:
    """POST one GraphQL request and return the response body, errors included. (Unlike
    GraphQLClient, it does not note the secrets it sends or receives for tests/log_secrets.py.)"""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        base_url + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=timeout,
    )
    return response.json()


def post_graphql_data(
    base_url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> Any:
    """`post_graphql`, failing the test on any GraphQL error; the response's `data`."""
    body = post_graphql(base_url, query, variables, token)
    assert not body.get("errors"), body
    return body["data"]


@dataclass
class GraphQLClient:
    base_url: str
    http: httpx.AsyncClient
    token: str | None = None

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/graphql"

    def with_token(self, token: str | None) -> GraphQLClient:
        return GraphQLClient(self.base_url, self.http, token)

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            self.base_url + "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code in (200, 400, 413), response.text
        body = response.json()
        log_secrets.remember_variables(variables)
        log_secrets.remember_response(body)
        return body

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute and fail the test on any GraphQL error."""
        body = await self.raw(query, variables)
        if body.get("errors"):
            raise GraphQLResponseError(json.dumps(body["errors"], indent=1))
        return body["data"]

    async def upload(
        self,
        query: str,
        variables: dict[str, Any],
        file_variable: str,
        filename: str,
        content: bytes,
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """A GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)."""
        variables = {**variables, file_variable: None}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            self.base_url + "/graphql",
            data={
                "operations": json.dumps({"query": query, "variables": variables}),
                "map": json.dumps({"0": [f"variables.{file_variable}"]}),
            },
            files={"0": (filename, content, content_type)},
            headers=headers,
        )
        body = response.json()
        log_secrets.remember_response(body)
        return body

    @asynccontextmanager
    async def subscription_connection(
        self, protocol: str = "graphql-transport-ws", token: str | None = None
    ) -> AsyncIterator[WebSocketSession]:
        token = token if token is not None else self.token
        async with websockets.connect(self.ws_url, subprotocols=[protocol], max_size=2**24) as socket:  # type: ignore[list-item]
            session = WebSocketSession(socket, protocol)
            await session.init({"Authorization": f"Bearer {token}"} if token else {})
            yield session


class WebSocketSession:
    def __init__(self, socket: Any, protocol: str) -> None:
        self.socket = socket
        self.protocol = protocol

    async def init(self, payload: dict[str, Any]) -> None:
        await self.socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
            if message["type"] in ("ka", "ping"):
                continue
            if message["type"] != "connection_ack":
                raise GraphQLResponseError(f"connection not acknowledged: {message}")
            return

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, operation_id: str | None = None
    ) -> str:
        operation_id = operation_id or uuid.uuid4().hex
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.socket.send(
            json.dumps(
                {"id": operation_id, "type": kind, "payload": {"query": query, "variables": variables or {}}}
            )
        )
        return operation_id

    async def stop(self, operation_id: str) -> None:
        kind = "complete" if self.protocol == "graphql-transport-ws" else "stop"
        await self.socket.send(json.dumps({"id": operation_id, "type": kind}))

    async def next_message(self, timeout: float = 30) -> dict[str, Any]:
        """The next next/data/error/complete message, answering pings and skipping keep-alives."""
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), timeout))
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] in ("ka", "pong"):
                continue
            log_secrets.remember_response(message.get("payload"))
            return message

    async def results(self, operation_id: str, timeout: float = 30) -> AsyncIterator[dict[str, Any]]:
        """Yield `payload` of each result for the operation until it completes."""
        while True:
            message = await self.next_message(timeout)
            if message.get("id") != operation_id:
                continue
            if message["type"] in ("next", "data"):
                yield message["payload"]
            elif message["type"] == "error":
                raise GraphQLResponseError(json.dumps(message["payload"]))
            elif message["type"] == "complete":
                return
