"""Request-body limits at the HTTP edge: how big a body may be, and how long it may stall.

Measured before this existed (issue 10): any POST /graphql could be as large as the upload
limit (251 MB), and parsing a 50 MB JSON query blocked the event loop for 3.5–9 s (100 MB
≈ 20 s) — one anonymous client stalled everybody. Now:

- a body that is not multipart/form-data may be at most MAX_REQUEST_BODY_KB (1 MB by
  default; a real GraphQL request is a few KB, and the token limit refuses big documents
  anyway). multipart/form-data keeps the upload limit (MAX_UPLOAD_MB plus the multipart
  overhead); documents/uploads.py caps each of its non-file parts.
- the declared Content-Length is checked before a byte of the body is read (413; the
  connection is closed too when the body is far over the limit); a chunked body is cut off
  as soon as the received bytes pass the limit (413 and `Connection: close`, so the rest is
  never read).
- a body that sends nothing for REQUEST_BODY_TIMEOUT_SECONDS is dropped with 408 (also
  `Connection: close`), so a stalled upload cannot hold a request open forever.

Only HTTP request bodies: WebSocket messages are capped by the ASGI server's frame limit
(`ragql serve` sets it to the same MAX_REQUEST_BODY_KB) and by the GraphQL view, which also
caps the GraphQL document inside a request (MAX_DOCUMENT_KB), over HTTP and WebSocket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Room for the multipart framing around a file of exactly MAX_UPLOAD_MB (boundaries, part
# headers, the operations and map fields), so such a file reaches the upload code, which
# answers with the typed FileTooLarge instead of a bare 413.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
# A declared body over its limit but at most 2 × limit + this is skipped so the client can
# read the 413; beyond that the connection is closed (see RequestLimits.__call__).
SKIP_ALLOWANCE_BYTES = 8 * 1024 * 1024


class BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes its limit."""


class BodyTimedOut(Exception):
    """Raised from `receive` when the client sent no body bytes for the timeout."""


# Under these paths a refusal is in OpenAI's error shape (the OpenAI-compatible API's clients).
OPENAI_PATH_PREFIX = "/v1/"


async def _refuse(
    send: Send, status: int, message: str, code: str, *, close: bool, openai_shape: bool = False
) -> None:
    if openai_shape:
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": code.lower()}
        body = json.dumps({"error": error}).encode()
    else:
        body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: cap request bodies (multipart vs everything else) and time out stalls."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        body_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_multipart_bytes = max_upload_bytes + MULTIPART_OVERHEAD_BYTES
        self.max_upload_mb = max_upload_bytes // (1024 * 1024)
        self.body_timeout_seconds = body_timeout_seconds

    @staticmethod
    def _skip_limit(limit: int) -> int:
        """Up to this declared size, an over-limit body is skipped rather than cut off."""
        return 2 * limit + SKIP_ALLOWANCE_BYTES

    def _limit_for(self, content_type: bytes) -> tuple[int, str]:
        if content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data":
            return (
                self.max_multipart_bytes,
                f"The upload is larger than the limit of {self.max_upload_mb} MB.",
            )
        kb = self.max_body_bytes // 1024
        return (
            self.max_body_bytes,
            f"The request body is larger than the limit of {kb} KB (MAX_REQUEST_BODY_KB); "
            "files go in a multipart upload.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = b""
        declared: bytes | None = None
        for name, value in scope.get("headers") or ():
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
        limit, too_large_message = self._limit_for(content_type)
        openai_shape = str(scope.get("path", "")).startswith(OPENAI_PATH_PREFIX)
        # (A malformed Content-Length never gets here: the HTTP parser rejects it.)
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            # Answered before a byte of the body is read. Most clients (browsers, httpx) send
            # their whole body before they read an answer: with the connection closed they
            # see a reset, not the 413. So a body somewhat over the limit (a too-big upload, a
            # bloated query) is skipped by uvicorn, unparsed, and the client reads the 413;
            # one far over it is no mistake and the connection is closed, so the kernel drops
            # the rest. (bench/huge_body_storm.py, 100 MB bodies: skipping them cost the
            # server 3.2 s of CPU for 161 refusals in 10 s, closing 2.1 s for 816.) A client
            # that sends `Expect: 100-continue` never sends the body either way.
            await _refuse(
                send,
                413,
                too_large_message,
                "TOO_LARGE",
                close=int(declared) > self._skip_limit(limit),
                openai_shape=openai_shape,
            )
            return

        received = 0
        body_done = False
        response_started = False
        timeout = self.body_timeout_seconds

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # After the body, receive() only waits for the disconnect (streaming
                # responses listen for it): no timeout there.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise BodyTimedOut from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
                if not message.get("more_body", False):
                    body_done = True
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # A chunked body has no end we could skip to (it may never end): close.
            if not response_started:
                await _refuse(
                    send, 413, too_large_message, "TOO_LARGE", close=True, openai_shape=openai_shape
                )
        except BodyTimedOut:
            if not response_started:
                await _refuse(
                    send,
                    408,
                    f"The request body stalled: nothing arrived for {timeout:g} s "
                    "(REQUEST_BODY_TIMEOUT_SECONDS).",
                    "REQUEST_TIMEOUT",
                    close=True,
                    openai_shape=openai_shape,
                )
