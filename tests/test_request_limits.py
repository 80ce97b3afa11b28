"""Request-size and request-time limits at the HTTP edge, probed like an attacker would:
raw sockets that declare or stream huge bodies, bodies that stall, JSON nested 100,000
deep, and oversized WebSocket messages. The server must refuse each one quickly, with a
clear status, and keep serving everybody else."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import websockets

from gql_server.settings import Settings
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, start_server
from tests.document_helpers import upload
from tests.graphql_client import GraphQLClient
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.asyncio

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


@pytest_asyncio.fixture
async def quick_timeout_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """The real app with a 1 s body timeout (the default is 30 s)."""
    limited = settings.model_copy(update={"request_body_timeout_seconds": 1.0})
    uvicorn_server, task, app, base_url = await start_server(limited)
    async with httpx.AsyncClient(timeout=60) as http:
        yield RunningServer(base_url, app, limited, GraphQLClient(base_url, http))
    uvicorn_server.should_exit = True
    await asyncio.wait_for(task, 30)


def _host_port(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").split(":")
    return host, int(port)


async def _read_response(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and (Content-Length) body of one HTTP/1.1 response."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
    return status, headers, body


def _query_with(size: int) -> dict[str, object]:
    """A valid GraphQL request whose body is about `size` bytes (one big variable value)."""
    return {"query": "query Q($v: String!) { __type(name: $v) { name } }", "variables": {"v": "a" * size}}


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_declared_huge_json_body_is_refused_before_it_is_read(server: RunningServer) -> None:
    """Content-Length 100 MB on a JSON request: 413 at once, without sending a body byte."""
    reader, writer = await asyncio.open_connection(*_host_port(server.base_url))
    try:
        started = time.monotonic()
        writer.write(
            _head("/graphql", {"Content-Type": "application/json", "Content-Length": str(100 * 1024 * 1024)})
        )
        await writer.drain()
        status, headers, body = await _read_response(reader, timeout=5)
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    assert status == 413, (status, body)
    assert elapsed < 1.0, elapsed
    # 100 MB is no mistake: the connection is closed, the kernel drops the rest.
    assert headers.get("connection") == "close"
    error = json.loads(body)["errors"][0]
    assert error["extensions"]["code"] == "TOO_LARGE"
    assert "1024 KB" in error["message"], error
    # A client that sends a body somewhat over the cap (5 MB) anyway, as httpx and browsers
    # do, still gets to read the 413 (the rest is skipped), not a reset.
    http = server.client.http
    sent_anyway = await http.post(server.base_url + "/graphql", json=_query_with(5 * 1024 * 1024))
    assert sent_anyway.status_code == 413, sent_anyway.text
    assert sent_anyway.json()["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    # Just under the cap still works (a 900 KB variable value).
    under = await http.post(server.base_url + "/graphql", json=_query_with(900 * 1024))
    assert under.status_code == 200 and under.json()["data"] == {"__type": None}, under.text


def _send_chunked(base_url: str, max_bytes: int) -> tuple[bytes, int]:
    """Stream a chunked JSON body (64 KB chunks, ~30 MB/s) on a blocking socket while another
    thread reads the answer; stop once it came or the server closed. Returns (answer, bytes
    sent). (Blocking sockets: asyncio would drop the received 413 when the write side fails.)"""
    connection = socket.create_connection(_host_port(base_url), timeout=10)
    answer = bytearray()
    answered = threading.Event()

    def read() -> None:
        try:
            while True:
                data = connection.recv(65536)
                if not data:
                    return
                answer.extend(data)
                head, _, rest = bytes(answer).partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if length is not None and len(rest) >= length:
                    return
        except OSError:
            return
        finally:
            answered.set()

    reader = threading.Thread(target=read)
    reader.start()
    sent = 0
    chunk = b"a" * 65536
    try:
        connection.sendall(
            _head("/graphql", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        )
        connection.sendall(b'10\r\n{"query": "{ __t\r\n')
        while sent < max_bytes and not answered.is_set():
            connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            time.sleep(0.002)
    except OSError:
        pass  # the server closed its side after answering
    reader.join(10)
    connection.close()
    return bytes(answer), sent


async def test_chunked_json_body_is_cut_off_once_it_passes_the_cap(server: RunningServer) -> None:
    """No Content-Length (chunked): refused as soon as the received bytes pass the cap."""
    answer, sent = await asyncio.to_thread(_send_chunked, server.base_url, 8 * 1024 * 1024)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    # Answered while the body was still arriving: after ~1 MB of the 8 MB.
    assert sent < 4 * 1024 * 1024, f"the server read {sent} bytes before refusing"
    assert (await server.client.http.get(server.base_url + "/healthz")).status_code == 200


async def test_multipart_uploads_keep_the_upload_limit(server: RunningServer) -> None:
    """The 1 MB cap is for JSON; a 1.5 MB upload (multipart) still goes through."""
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    refused = await server.client.http.post(server.base_url + "/graphql", json=_query_with(1536 * 1024))
    assert refused.status_code == 413, refused.text
    # A model that does not exist: the whole 1.5 MB body is read and parsed, the resolver
    # answers NotFound, and nothing is ingested.
    result = await upload(admin, uuid.uuid4(), "big.txt", b"a" * (1536 * 1024))
    assert result["__typename"] == "NotFound", result


async def test_a_stalled_body_is_dropped_with_408(quick_timeout_server: RunningServer) -> None:
    server = quick_timeout_server
    reader, writer = await asyncio.open_connection(*_host_port(server.base_url))
    try:
        started = time.monotonic()
        writer.write(_head("/graphql", {"Content-Type": "application/json", "Content-Length": "100"}))
        writer.write(b'{"query": ')
        await writer.drain()
        status, headers, body = await _read_response(reader, timeout=10)
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    assert status == 408, (status, body)
    assert 0.9 <= elapsed < 5, elapsed
    assert headers.get("connection") == "close"
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    # A slow upload that keeps sending is not a stalled one: bytes every 0.5 s for 2 s.
    reader, writer = await asyncio.open_connection(*_host_port(server.base_url))
    payload = json.dumps({"query": "{ __typename }", "variables": {"pad": " " * 40}}).encode()
    try:
        writer.write(
            _head("/graphql", {"Content-Type": "application/json", "Content-Length": str(len(payload))})
        )
        for start in range(0, len(payload), len(payload) // 4 + 1):
            writer.write(payload[start : start + len(payload) // 4 + 1])
            await writer.drain()
            await asyncio.sleep(0.5)
        status, _, body = await _read_response(reader, timeout=10)
    finally:
        writer.close()
    assert status == 200 and json.loads(body)["data"] == {"__typename": "Query"}, body
    health = await server.client.http.get(server.base_url + "/healthz")
    assert health.status_code == 200


async def test_json_nested_100000_deep_is_a_400_not_a_500(server: RunningServer) -> None:
    http = server.client.http
    response = await http.post(
        server.base_url + "/graphql", content=DEEP_JSON, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "JSON" in response.json()["errors"][0]["message"]
    # In GET variables too.
    deep_variables = "[" * 3000 + "]" * 3000  # deeper than Python's recursion limit, fits a URL
    got = await http.get(
        server.base_url + "/graphql", params={"query": "{ __typename }", "variables": deep_variables}
    )
    assert got.status_code == 400, got.text
    # And as the operations field of a multipart request.
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    multipart = await http.post(
        server.base_url + "/graphql",
        data={"operations": "[" * 100_000 + "]" * 100_000, "map": "{}"},
        files={"0": ("a.txt", b"hello", "text/plain")},
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert multipart.status_code == 400, multipart.text


async def test_deeply_nested_websocket_messages_do_not_crash_the_handler(server: RunningServer) -> None:
    url = server.client.ws_url
    # graphql-transport-ws: an unparsable message closes the socket with 4400.
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_size=2**24) as socket:  # type: ignore[list-item]
        await socket.send(DEEP_JSON.decode())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400, closed.value
    # graphql-ws ignores unparsable messages: the connection keeps working.
    async with websockets.connect(url, subprotocols=["graphql-ws"], max_size=2**24) as socket:  # type: ignore[list-item]
        await socket.send(DEEP_JSON.decode())
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert ack["type"] == "connection_ack", ack


async def test_websocket_messages_over_the_cap_close_the_socket(server: RunningServer) -> None:
    """The app refuses messages over MAX_REQUEST_BODY_KB itself (whatever the ASGI server's
    own frame limit), with close code 1009."""
    big = json.dumps({"type": "connection_init", "payload": {"pad": "a" * (2 * 1024 * 1024)}})
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        async with websockets.connect(
            server.client.ws_url, subprotocols=[protocol], max_size=2**24
        ) as socket:  # type: ignore[list-item]
            await socket.send(big)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                    assert message["type"] not in ("connection_ack",), (protocol, message)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, (protocol, closed.value)


async def test_ragql_serve_caps_bodies_and_websocket_frames(tmp_path: Path) -> None:
    """The real `ragql serve` (uvloop + httptools + websockets-sansio): the JSON cap holds
    there too, and uvicorn's own WebSocket frame limit is the cap, not its 16 MB default."""
    serve = await asyncio.to_thread(ServeProcess(tmp_path / "data", env={"MAX_REQUEST_BODY_KB": "64"}).start)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            refused = await http.post(serve.base_url + "/graphql", json=_query_with(100 * 1024))
        assert refused.status_code == 413 and "64 KB" in refused.json()["errors"][0]["message"]
        url = serve.base_url.replace("http://", "ws://") + "/graphql"
        message = json.dumps({"type": "connection_init", "payload": {"pad": "a" * 100 * 1024}})
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_size=2**24) as socket:  # type: ignore[list-item]
            await socket.send(message)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            # Refused by uvicorn's frame limit ("frame with N bytes exceeds limit of 65536
            # bytes"), before the app buffered it, not by the view's own check.
            rcvd = closed.value.rcvd
            assert rcvd is not None and rcvd.code == 1009 and "exceeds limit" in rcvd.reason, closed.value
        assert "Traceback" not in serve.output(), serve.output()[-3000:]
    finally:
        await asyncio.to_thread(serve.stop)


async def test_a_huge_document_is_refused_before_it_is_parsed(server: RunningServer) -> None:
    """Under the body cap, a 900 KB comment is still one token that graphql-core's lexer walks
    character by character (0.2–0.7 s of event loop per request): the document itself is
    capped at MAX_DOCUMENT_KB, over HTTP and over WebSocket."""
    huge = "{ __typename } #" + "a" * (900 * 1024)
    response = await server.client.http.post(
        server.base_url + "/graphql",
        json={"query": huge},
        headers={"accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400, response.text[:300]
    result = response.json()
    assert "data" not in result and "MAX_DOCUMENT_KB" in result["errors"][0]["message"], result
    # Variables are not the document: a big variable value is fine.
    big_variable = await server.client.http.post(server.base_url + "/graphql", json=_query_with(600 * 1024))
    assert big_variable.status_code == 200 and big_variable.json()["data"] == {"__type": None}
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        async with server.client.subscription_connection(protocol) as session:
            operation = await session.subscribe("subscription { me { id } } #" + "a" * (100 * 1024))
            message = await session.next_message(timeout=10)
            assert message["id"] == operation and message["type"] == "error", (protocol, message)
            assert "MAX_DOCUMENT_KB" in json.dumps(message["payload"]), (protocol, message)
            # The connection stays usable.
            ok = await session.subscribe("subscription { me { id } }")
            assert (await session.next_message(timeout=10))["id"] == ok
