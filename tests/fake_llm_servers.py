"""Local stand-ins for Ollama, OpenAI-compatible servers and Anthropic, on real HTTP.

Each fake speaks its provider's actual streaming wire format (Ollama's NDJSON, OpenAI's
`data:` SSE ending in `[DONE]`, Anthropic's named SSE events), so the providers under
test run their real HTTP clients and SDK parsers against it. Behaviour is set per test
through `FakeBehaviour` (tokens, pacing, failures, keys, known models) and may be changed
between requests; every request is recorded with the time its first token was sent, so
tests can assert what the prompt contained and benchmarks can measure time to first token.

Run a fake either on the caller's event loop or in a thread with its own loop:

    async with FakeOllamaServer(FakeBehaviour(tokens=["Hi"])).serve() as server: ...
    with FakeOpenAIServer().serve_in_thread() as server: ...

`server.base_url` is what a ProviderConfig's base_url should be for that provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_MODEL_NAME = "fake-model"


class FailureMode(enum.Enum):
    # Close the TCP connection without finishing the response body.
    DROP_CONNECTION = "drop_connection"
    # Send the provider's in-stream error object/event, then end the response cleanly.
    ERROR_EVENT = "error_event"
    # Stop sending and keep the connection open until the client gives up or the server stops.
    HANG = "hang"
    # End the response cleanly but without the provider's "finished" marker.
    END_WITHOUT_FINISH = "end_without_finish"


@dataclass
class FakeBehaviour:
    tokens: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "!"])
    # Tokens are sent on a fixed schedule (start + i * delay), not with a sleep after each
    # send, so throughput under load stays at the configured rate for benchmarks.
    token_delay_s: float = 0.0
    # Wait before sending response headers: a slow model load, or (large) a hung server.
    initial_delay_s: float = 0.0
    fail_after_tokens: int | None = None
    failure_mode: FailureMode = FailureMode.DROP_CONNECTION
    # Error type for ERROR_EVENT: Anthropic's `error.type`, OpenAI's `error.code`, Ollama's text.
    error_type: str | None = None
    required_api_key: str | None = None
    known_models: set[str] = field(default_factory=lambda: {DEFAULT_MODEL_NAME})
    rate_limited: bool = False
    # OpenAI-compatible servers that predate `stream_options` answer 400 when they see it.
    reject_stream_options: bool = False
    prompt_tokens: int = 42
    # Answer every request with a redirect to this URL (status `redirect_status`), or with
    # `forced_status` and `forced_body` as text/plain, before any provider logic runs.
    redirect_to: str | None = None
    redirect_status: int = 302
    forced_status: int | None = None
    forced_body: str = ""
    # The answer ends because it reached the request's output token limit: finish_reason
    # "length" (OpenAI-compatible, llama.cpp), done_reason "length" (Ollama), stop_reason
    # "max_tokens" (Anthropic).
    hit_token_limit: bool = False
    # False: the server reports no token counts (no usage chunk, no eval counts).
    report_usage: bool = True


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    first_token_sent_at: float | None = None
    tokens_sent: int = 0


class _DroppedConnection(Exception):
    """Raised inside a response stream so uvicorn aborts the connection mid-body."""


class _HideDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DroppedConnection))


_uvicorn_filter_installed = False


def _install_log_filter() -> None:
    # Dropped connections are deliberate here; other server errors still get logged.
    global _uvicorn_filter_installed
    if not _uvicorn_filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())
        _uvicorn_filter_installed = True


def now() -> float:
    """The clock used for all recorded timestamps (monotonic, comparable across threads)."""
    return time.perf_counter()


class FakeLLMServer:
    # Path appended to the server's root to make the base URL a provider is configured with.
    base_path = ""

    def __init__(self, behaviour: FakeBehaviour | None = None) -> None:
        self.behaviour = behaviour or FakeBehaviour()
        self.requests: list[RecordedRequest] = []
        self._port: int | None = None
        self._stopping = False

    @property
    def root_url(self) -> str:
        if self._port is None:
            raise RuntimeError("The fake server is not running.")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self.base_path

    def chat_requests(self) -> list[RecordedRequest]:
        raise NotImplementedError

    def routes(self) -> list[Route]:
        raise NotImplementedError

    # --- shared request handling -------------------------------------------------

    async def record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={key.lower(): value for key, value in request.headers.items()},
            body=body,
            received_at=now(),
        )
        self.requests.append(recorded)
        return recorded

    async def sleep_unless_stopping(self, seconds: float) -> None:
        deadline = now() + seconds
        while not self._stopping and now() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - now())))

    async def paced_tokens(self, recorded: RecordedRequest) -> AsyncIterator[str]:
        """The configured tokens on schedule, stopping early at the configured failure point."""
        behaviour = self.behaviour
        started = now()
        for index, token in enumerate(behaviour.tokens):
            if behaviour.fail_after_tokens is not None and index >= behaviour.fail_after_tokens:
                return
            if behaviour.token_delay_s:
                await self.sleep_unless_stopping(started + index * behaviour.token_delay_s - now())
            if recorded.first_token_sent_at is None:
                recorded.first_token_sent_at = now()
            recorded.tokens_sent += 1
            yield token

    def failing_now(self, recorded: RecordedRequest) -> bool:
        failure_point = self.behaviour.fail_after_tokens
        return failure_point is not None and recorded.tokens_sent >= failure_point

    async def fail_without_event(self) -> None:
        """DROP_CONNECTION and HANG look the same in every wire format."""
        if self.behaviour.failure_mode is FailureMode.HANG:
            while not self._stopping:
                await asyncio.sleep(0.05)
        raise _DroppedConnection()

    # --- running -----------------------------------------------------------------

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self._port = listener.getsockname()[1]
        return listener

    def _server(self) -> uvicorn.Server:
        _install_log_filter()
        config = uvicorn.Config(
            self._overriding(Starlette(routes=self.routes())),
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        return uvicorn.Server(config)

    def _overriding(self, app: Starlette) -> Any:
        """`app`, unless the behaviour says to answer every request with a redirect or a
        fixed status (recorded like any other request)."""

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            behaviour = self.behaviour
            if scope["type"] != "http" or (behaviour.redirect_to is None and behaviour.forced_status is None):
                await app(scope, receive, send)
                return
            await self.record(Request(scope, receive))
            if behaviour.redirect_to is not None:
                response: Response = Response(
                    status_code=behaviour.redirect_status, headers={"location": behaviour.redirect_to}
                )
            else:
                response = Response(
                    behaviour.forced_body, status_code=behaviour.forced_status or 500, media_type="text/plain"
                )
            await response(scope, receive, send)

        return asgi

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[Self]:
        """Run on the current event loop for the duration of the block."""
        listener = self._bind()
        server = self._server()
        self._stopping = False
        task = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("The fake server stopped during startup.")
                await asyncio.sleep(0.005)
            yield self
        finally:
            self._stopping = True
            server.should_exit = True
            await task
            listener.close()

    @contextlib.contextmanager
    def serve_in_thread(self) -> Iterator[Self]:
        """Run in a background thread with its own event loop, for synchronous callers and load tests."""
        listener = self._bind()
        server = self._server()
        self._stopping = False
        thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[listener]),), daemon=True)
        thread.start()
        try:
            deadline = now() + 10
            while not server.started:
                if not thread.is_alive() or now() > deadline:
                    raise RuntimeError("The fake server did not start.")
                time.sleep(0.005)
            yield self
        finally:
            self._stopping = True
            server.should_exit = True
            thread.join(timeout=10)
            listener.close()


def _bearer_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    return authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else None


# --- Ollama ------------------------------------------------------------------------


class FakeOllamaServer(FakeLLMServer):
    def routes(self) -> list[Route]:
        return [
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/tags", self.tags, methods=["GET"]),
            Route("/api/show", self.show, methods=["POST"]),
        ]

    def chat_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == "/api/chat"]

    def _rejection(self, request: Request) -> Response | None:
        required = self.behaviour.required_api_key
        if required is not None and _bearer_key(request) != required:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if self.behaviour.rate_limited:
            return JSONResponse({"error": "too many requests, please slow down"}, status_code=429)
        return None

    async def chat(self, request: Request) -> Response:
        recorded = await self.record(request)
        await self.sleep_unless_stopping(self.behaviour.initial_delay_s)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        model = str((recorded.body or {}).get("model"))
        if model not in self.behaviour.known_models:
            return JSONResponse({"error": f"model '{model}' not found"}, status_code=404)
        if (recorded.body or {}).get("stream") is False:
            text = "".join(self.behaviour.tokens)
            return JSONResponse({**self._chunk(model, text, done=True), **self._final_counts()})
        return StreamingResponse(self._chat_stream(model, recorded), media_type="application/x-ndjson")

    def _chunk(self, model: str, content: str, *, done: bool) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            "message": {"role": "assistant", "content": content},
            "done": done,
        }

    def _final_counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = {
            "done_reason": "length" if self.behaviour.hit_token_limit else "stop",
            "total_duration": 1_000_000,
            "load_duration": 100_000,
            "prompt_eval_count": self.behaviour.prompt_tokens,
            "prompt_eval_duration": 200_000,
            "eval_count": len(self.behaviour.tokens),
            "eval_duration": 700_000,
        }
        if not self.behaviour.report_usage:
            for key in ("prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"):
                counts.pop(key)
        return counts

    async def _chat_stream(self, model: str, recorded: RecordedRequest) -> AsyncIterator[bytes]:
        async for token in self.paced_tokens(recorded):
            yield (json.dumps(self._chunk(model, token, done=False)) + "\n").encode()
        if self.failing_now(recorded):
            mode = self.behaviour.failure_mode
            if mode is FailureMode.ERROR_EVENT:
                message = self.behaviour.error_type or "an error was encountered while running the model"
                yield (json.dumps({"error": message}) + "\n").encode()
                return
            if mode is FailureMode.END_WITHOUT_FINISH:
                return
            await self.fail_without_event()
        yield (json.dumps({**self._chunk(model, "", done=True), **self._final_counts()}) + "\n").encode()

    async def tags(self, request: Request) -> Response:
        await self.record(request)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        models = [
            {
                "name": name if ":" in name else f"{name}:latest",
                "model": name if ":" in name else f"{name}:latest",
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 1_000_000,
                "digest": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "details": {"format": "gguf", "family": "fake", "parameter_size": "1B"},
            }
            for name in sorted(self.behaviour.known_models)
        ]
        return JSONResponse({"models": models})

    async def show(self, request: Request) -> Response:
        recorded = await self.record(request)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        model = str((recorded.body or {}).get("model") or (recorded.body or {}).get("name"))
        if model not in self.behaviour.known_models:
            return JSONResponse({"error": f"model '{model}' not found"}, status_code=404)
        return JSONResponse({"modelfile": f"FROM {model}", "details": {"family": "fake"}, "model_info": {}})


# --- OpenAI-compatible ---------------------------------------------------------------


def _openai_error(message: str, error_type: str, code: str | None, status_code: int) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        status_code=status_code,
    )


class FakeOpenAIServer(FakeLLMServer):
    base_path = "/v1"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    def chat_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == "/v1/chat/completions"]

    def _rejection(self, request: Request) -> Response | None:
        required = self.behaviour.required_api_key
        given = _bearer_key(request)
        if required is not None and given != required:
            # OpenAI echoes a masked form of the key it received.
            masked = f"{(given or '')[:3]}***{(given or '')[-4:]}"
            return _openai_error(
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
                401,
            )
        if self.behaviour.rate_limited:
            return _openai_error(
                "Rate limit reached for requests. Limit: 3 / min. Please try again in 20s.",
                "requests",
                "rate_limit_exceeded",
                429,
            )
        return None

    async def chat_completions(self, request: Request) -> Response:
        recorded = await self.record(request)
        await self.sleep_unless_stopping(self.behaviour.initial_delay_s)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        body = recorded.body or {}
        model = str(body.get("model"))
        if model not in self.behaviour.known_models:
            return _openai_error(
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
                404,
            )
        if self.behaviour.reject_stream_options and "stream_options" in body:
            return _openai_error(
                "Unrecognized request argument supplied: stream_options", "invalid_request_error", None, 400
            )
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if not body.get("stream"):
            text = "".join(self.behaviour.tokens)
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": self._usage(),
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            self._completion_stream(completion_id, model, include_usage, recorded),
            media_type="text/event-stream",
        )

    def _usage(self) -> dict[str, int]:
        completion_tokens = len(self.behaviour.tokens)
        return {
            "prompt_tokens": self.behaviour.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.behaviour.prompt_tokens + completion_tokens,
        }

    async def _completion_stream(
        self, completion_id: str, model: str, include_usage: bool, recorded: RecordedRequest
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                payload["usage"] = None
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""}, None)
        async for token in self.paced_tokens(recorded):
            yield chunk({"content": token}, None)
        if self.failing_now(recorded):
            mode = self.behaviour.failure_mode
            if mode is FailureMode.ERROR_EVENT:
                error = {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": self.behaviour.error_type,
                }
                yield f"data: {json.dumps({'error': error})}\n\n".encode()
                return
            if mode is FailureMode.END_WITHOUT_FINISH:
                yield b"data: [DONE]\n\n"
                return
            await self.fail_without_event()
        yield chunk({}, "length" if self.behaviour.hit_token_limit else "stop")
        if include_usage and self.behaviour.report_usage:
            usage_chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": self._usage(),
            }
            yield f"data: {json.dumps(usage_chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def models(self, request: Request) -> Response:
        await self.record(request)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        data = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
            for name in sorted(self.behaviour.known_models)
        ]
        return JSONResponse({"object": "list", "data": data})


# --- Anthropic ------------------------------------------------------------------------


def _anthropic_error(error_type: str, message: str, status_code: int) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"},
        status_code=status_code,
    )


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropicServer(FakeLLMServer):
    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", self.model, methods=["GET"]),
        ]

    def chat_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == "/v1/messages"]

    def _rejection(self, request: Request) -> Response | None:
        required = self.behaviour.required_api_key
        # Older SDKs send the key as x-api-key, anthropic 2.x as a bearer token; the API takes both.
        given = request.headers.get("x-api-key") or _bearer_key(request)
        if required is not None and given != required:
            return _anthropic_error("authentication_error", "invalid x-api-key", 401)
        if not request.headers.get("anthropic-version"):
            return _anthropic_error("invalid_request_error", "anthropic-version: header is required", 400)
        if self.behaviour.rate_limited:
            return _anthropic_error(
                "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", 429
            )
        return None

    async def messages(self, request: Request) -> Response:
        recorded = await self.record(request)
        await self.sleep_unless_stopping(self.behaviour.initial_delay_s)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        body = recorded.body or {}
        model = str(body.get("model"))
        if model not in self.behaviour.known_models:
            return _anthropic_error("not_found_error", f"model: {model}", 404)
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": "".join(self.behaviour.tokens)}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": self.behaviour.prompt_tokens,
                        "output_tokens": len(self.behaviour.tokens),
                    },
                }
            )
        return StreamingResponse(
            self._message_stream(message_id, model, recorded), media_type="text/event-stream"
        )

    async def _message_stream(
        self, message_id: str, model: str, recorded: RecordedRequest
    ) -> AsyncIterator[bytes]:
        yield _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": self.behaviour.prompt_tokens, "output_tokens": 1},
                },
            },
        )
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        yield _sse("ping", {"type": "ping"})
        async for token in self.paced_tokens(recorded):
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}},
            )
        if self.failing_now(recorded):
            mode = self.behaviour.failure_mode
            if mode is FailureMode.ERROR_EVENT:
                error_type = self.behaviour.error_type or "overloaded_error"
                message = "Overloaded" if error_type == "overloaded_error" else "Internal server error"
                yield _sse("error", {"type": "error", "error": {"type": error_type, "message": message}})
                return
            if mode is FailureMode.END_WITHOUT_FINISH:
                return
            await self.fail_without_event()
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "max_tokens" if self.behaviour.hit_token_limit else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": len(self.behaviour.tokens)},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})

    def _model_info(self, name: str) -> dict[str, Any]:
        return {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}

    async def models(self, request: Request) -> Response:
        await self.record(request)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        names = sorted(self.behaviour.known_models)
        return JSONResponse(
            {
                "data": [self._model_info(name) for name in names],
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        )

    async def model(self, request: Request) -> Response:
        await self.record(request)
        if (rejection := self._rejection(request)) is not None:
            return rejection
        model_id = request.path_params["model_id"]
        if model_id not in self.behaviour.known_models:
            return _anthropic_error("not_found_error", f"model: {model_id}", 404)
        return JSONResponse(self._model_info(model_id))


# --- standalone process (benchmarks) ---------------------------------------------------

_SERVER_CLASSES: dict[str, type[FakeLLMServer]] = {
    "openai": FakeOpenAIServer,
    "anthropic": FakeAnthropicServer,
    "ollama": FakeOllamaServer,
}


def _recorded_route(server: FakeLLMServer) -> Route:
    """GET /_recorded: every chat request's last message and its timestamps (for benchmarks)."""

    async def recorded(request: Request) -> Response:
        rows = []
        for item in server.chat_requests():
            messages = (item.body or {}).get("messages") or [{}]
            content = messages[-1].get("content")
            rows.append(
                {
                    "content": content if isinstance(content, str) else json.dumps(content),
                    "received_at": item.received_at,
                    "first_token_sent_at": item.first_token_sent_at,
                    "tokens_sent": item.tokens_sent,
                }
            )
        return JSONResponse(rows)

    return Route("/_recorded", recorded, methods=["GET"])


def main(argv: list[str] | None = None) -> None:
    """Run one fake server in its own process until SIGTERM/SIGINT.

        python -m tests.fake_llm_servers openai --tokens 40 --token-delay 0.05

    Prints one JSON line {"base_url": ..., "root_url": ..., "pid": ...} once it is listening.
    Timestamps are time.perf_counter() (CLOCK_MONOTONIC on Linux, system-wide), but only
    differences within this process are meaningful to callers.
    """
    import argparse
    import os
    import signal

    parser = argparse.ArgumentParser(prog="python -m tests.fake_llm_servers")
    parser.add_argument("provider", choices=sorted(_SERVER_CLASSES))
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--token-delay", type=float, default=0.05)
    parser.add_argument("--initial-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = _SERVER_CLASSES[args.provider](
        FakeBehaviour(
            tokens=[f"tok{i} " for i in range(args.tokens)],
            token_delay_s=args.token_delay,
            initial_delay_s=args.initial_delay,
        )
    )
    original_routes = server.routes
    server.routes = lambda: [*original_routes(), _recorded_route(server)]  # type: ignore[method-assign]

    async def run() -> None:
        listener = server._bind()
        uvicorn_server = server._server()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: setattr(uvicorn_server, "should_exit", True))
        task = asyncio.create_task(uvicorn_server.serve(sockets=[listener]))
        while not uvicorn_server.started:
            if task.done():
                task.result()
                raise RuntimeError("The fake server stopped during startup.")
            await asyncio.sleep(0.005)
        print(
            json.dumps({"base_url": server.base_url, "root_url": server.root_url, "pid": os.getpid()}),
            flush=True,
        )
        await task
        server._stopping = True

    asyncio.run(run())


if __name__ == "__main__":
    main()
