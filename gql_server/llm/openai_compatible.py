"""Any server speaking OpenAI's chat-completions API (OpenAI, vLLM, llama.cpp, LM Studio, ...).

Spoken through the official `openai` client. Compatible servers differ in which optional
parameters they accept, so a request rejected *because of* one of the parameters we add
(`stream_options`, `max_tokens`, `temperature`) is retried once per parameter without it,
before any token was produced. Retries of anything else are left to the user: a failed
answer is cheaper to re-ask than a silently doubled bill.

The request (and every status error) goes through the SDK; the streamed body is read
here: SSE `data:` lines split from the raw bytes and decoded with json.loads, instead of
the SDK building a pydantic-style object per chunk (that cost ~0.1 ms of CPU per token,
a quarter of the server's CPU under many concurrent answers). Transport failures while
streaming are raised as the SDK's APITimeoutError / APIConnectionError and an error
object inside the stream as APIError, exactly as the SDK's own stream does. Only the
SDK's public API is used (no `openai._...` modules).

The SDK gets an httpx2 client from gql_server.llm.guarded_http: connections only to the
base URL's origin, each address checked against the URL policy, redirects not followed
(a 3xx is a failure that says so), and the key withheld unless it was entered for this
origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import openai
from anyio.lowlevel import checkpoint

from gql_server.llm.base import (
    ConnectionCheck,
    ErrorKind,
    Finish,
    GenerationEvent,
    GenerationRequest,
    LLMProviderError,
    ProviderConfig,
    TokenDelta,
    Usage,
    failed_connection_check,
    passed_connection_check,
    redact_secret,
    shorten_detail,
)
from gql_server.llm.failure_messages import (
    authentication_failure,
    bad_request_failure,
    connect_timeout_failure,
    connection_failure,
    model_not_found_failure,
    permission_failure,
    provider_failure,
    rate_limited_failure,
    stream_interrupted_failure,
    timeout_failure,
)
from gql_server.llm.guarded_http import (
    ProviderAddressRefused,
    address_failure,
    is_redirect,
    key_may_go_to,
    key_origin_failure,
    listed_model_names,
    provider_httpx2_client,
    redirect_failure,
)

logger = logging.getLogger(__name__)

# The client refuses to start without a key; servers that need none ignore this one.
PLACEHOLDER_API_KEY = "ragql-no-api-key"

# Idle pooled connections are dropped before the common 5 s server keep-alive timeout
# (uvicorn, so vLLM and most local servers): reusing one the server is closing at that
# moment fails the request with "server disconnected" before it was even received.
KEEPALIVE_EXPIRY_SECONDS = 4.0
# Every concurrent answer holds one connection; keeping them all pooled spares a TCP
# connect per answer when hundreds stream at once (the SDK keeps only 100).
MAX_CONNECTIONS = 1000

# One retry per parameter we might drop or rename, plus the original attempt.
_MAX_PARAMETER_ADJUSTMENTS = 3
# Waits before re-sending a request that got no response at all (see `stream`).
CONNECTION_RETRY_DELAYS_S = (0.05, 0.3)
# What reading the streamed body may raise: the same families the SDK itself treats as
# timeouts and as connection failures (AnyIO's TLS end-of-stream is not mapped by httpx2).
_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (httpx2.TimeoutException,)
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream)
# Reading the rest of a finished stream (so its connection can be reused) may take this long.
_DRAIN_TIMEOUT_S = 0.1


class OpenAICompatibleProvider:
    def __init__(self, config: ProviderConfig) -> None:
        if not config.base_url:
            raise ValueError("An OpenAI-compatible provider needs a base URL.")
        self._config = config
        self._base_url = config.base_url.rstrip("/")
        self._where = f"the OpenAI-compatible server at {self._base_url}"
        self._key_allowed = key_may_go_to(config.api_key, config.api_key_origin, self._base_url)
        timeout = openai.Timeout(config.request_timeout_s, connect=config.connect_timeout_s)
        self._client = openai.AsyncOpenAI(
            # A key entered for another origin is not even handed to the client.
            api_key=(config.api_key if self._key_allowed else None) or PLACEHOLDER_API_KEY,
            base_url=self._base_url,
            max_retries=0,
            timeout=timeout,
            http_client=provider_httpx2_client(
                config.url_policy,
                self._base_url,
                limits=httpx2.Limits(
                    max_connections=MAX_CONNECTIONS,
                    max_keepalive_connections=MAX_CONNECTIONS,
                    keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
                ),
                timeout=timeout,
            ),
        )

    def _completion_parameters(self, request: GenerationRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system_prompt}]
        messages += [{"role": turn.role, "content": turn.content} for turn in request.messages]
        return {
            "model": self._config.model_name,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": self._config.temperature,
            "max_tokens": self._config.max_output_tokens,
        }

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        if not self._key_allowed:
            raise key_origin_failure(self._where, self._config.api_key_origin or "")
        parameters = self._completion_parameters(request)
        chunks = None
        adjustments = connection_retries = 0
        while chunks is None:
            try:
                chunks = await self._client.chat.completions.create(**parameters)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                adjusted = _parameters_without_rejected_one(parameters, error)
                if adjusted is None or adjustments >= _MAX_PARAMETER_ADJUSTMENTS:
                    raise self._failure(error, answer_started=False) from None
                adjustments += 1
                logger.info("Retrying %s without a rejected parameter", self._base_url)
                parameters = adjusted
            except ProviderAddressRefused as refused:
                raise address_failure(self._where, refused) from None
            except openai.APITimeoutError as error:  # a subclass of APIConnectionError: no retry
                raise self._failure(error, answer_started=False) from None
            except openai.APIConnectionError as error:
                if isinstance(error.__cause__, ProviderAddressRefused):
                    raise self._failure(error, answer_started=False) from None
                # No response at all: refused, reset, or a pooled keep-alive connection the
                # server closed as we reused it. Nothing was generated, so the request is
                # sent again, twice at most (the SDK's own default retries, without its
                # multi-second backoff); a server that is really down still fails in < 1 s.
                if connection_retries >= len(CONNECTION_RETRY_DELAYS_S):
                    raise self._failure(error, answer_started=False) from None
                logger.info(
                    "Retrying %s after a connection failure: %r", self._base_url, error.__cause__ or error
                )
                await asyncio.sleep(CONNECTION_RETRY_DELAYS_S[connection_retries])
                connection_retries += 1
            except openai.OpenAIError as error:
                raise self._failure(error, answer_started=False) from None

        answer_started = False
        finish_reason: str | None = None
        usage: Usage | None = None
        response = chunks.response
        try:
            async for data in _sse_data(response):
                if data.startswith(b"[DONE]"):
                    if response.http_version == "HTTP/1.1":
                        # The rest of the body must be read for the connection to be reused.
                        await _drain(response)
                    break
                payload = _json_payload(data, response)
                if not isinstance(payload, dict):
                    continue
                reported = payload.get("usage")
                if isinstance(reported, dict):
                    usage = Usage(reported.get("prompt_tokens"), reported.get("completion_tokens"))
                for choice in payload.get("choices") or ():
                    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta")
                    content = delta.get("content") if isinstance(delta, dict) else None
                    if content:
                        answer_started = True
                        yield TokenDelta(content)
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
        except openai.OpenAIError as error:
            raise self._failure(error, answer_started=answer_started) from None
        finally:
            await chunks.close()
        if finish_reason is None:
            # The server closed the stream cleanly but never said the answer was finished.
            raise stream_interrupted_failure(self._where)
        # "length": the model reached max_tokens (llama.cpp's server says the same).
        yield Finish(finish_reason, truncated=finish_reason == "length")
        if usage is not None:
            yield usage

    def _failure(
        self, error: openai.OpenAIError, *, answer_started: bool, with_detail: bool = True
    ) -> LLMProviderError:
        logger.info(
            "OpenAI-compatible request to %s failed: %s (%r)",
            self._base_url,
            type(error).__name__,
            error.__cause__,
        )
        if isinstance(error.__cause__, ProviderAddressRefused):  # should the SDK ever wrap it
            return address_failure(self._where, error.__cause__)
        if isinstance(error, openai.APIStatusError) and is_redirect(error.status_code):
            return redirect_failure(self._where, error.status_code)
        full_detail = self._detail(error)
        # Connection tests classify with the server's text but never repeat it.
        detail = full_detail if with_detail else None
        if isinstance(error, openai.APITimeoutError):
            if type(error.__cause__).__name__ == "ConnectTimeout":
                return connect_timeout_failure(self._where, self._config.connect_timeout_s)
            return timeout_failure(self._where, self._config.request_timeout_s, during_answer=answer_started)
        if isinstance(error, openai.APIConnectionError):
            if answer_started:
                return stream_interrupted_failure(self._where)
            return connection_failure(self._where)
        if isinstance(error, openai.AuthenticationError):
            return authentication_failure(self._where, error.status_code, has_key=bool(self._config.api_key))
        if isinstance(error, openai.PermissionDeniedError):
            return permission_failure(self._where, error.status_code, detail)
        if isinstance(error, openai.NotFoundError):
            if "model" in (full_detail or "").lower():
                return model_not_found_failure(self._where, self._config.model_name)
            return LLMProviderError(
                ErrorKind.PROVIDER_ERROR,
                f"{self._where[:1].upper()}{self._where[1:]} has no /chat/completions endpoint (HTTP 404). "
                "Check the base URL; most servers expect it to end in /v1.",
                status_code=404,
            )
        if isinstance(error, openai.RateLimitError):
            return rate_limited_failure(self._where, error.status_code)
        if isinstance(error, openai.APIStatusError):
            if error.status_code in (503, 529):
                return rate_limited_failure(self._where, error.status_code, overloaded=True)
            if 400 <= error.status_code < 500:
                return bad_request_failure(self._where, error.status_code, detail)
            return provider_failure(self._where, error.status_code, detail)
        if isinstance(error, openai.APIError):
            # An error object sent inside the stream (HTTP status was already 200).
            code = f"{error.code or ''} {error.type or ''}".lower()
            if "rate_limit" in code or "overloaded" in code:
                return rate_limited_failure(self._where, None, overloaded="overloaded" in code)
            return provider_failure(self._where, None, detail)
        return provider_failure(self._where, None, detail)

    def _detail(self, error: openai.OpenAIError) -> str | None:
        body = getattr(error, "body", None)
        text: str | None = None
        if isinstance(body, dict):
            message = body.get("message")
            if message is None and isinstance(body.get("error"), dict):
                message = body["error"].get("message")
            text = str(message) if message is not None else None
        elif isinstance(body, str):
            text = body
        if not text:
            return None
        return shorten_detail(redact_secret(text, self._config.api_key))

    async def check_connection(self) -> ConnectionCheck:
        """Reachability, status, whether the model is listed; never the server's own text."""
        if not self._key_allowed:
            failure = key_origin_failure(self._where, self._config.api_key_origin or "")
            return ConnectionCheck(ok=False, message=failure.user_message, latency_ms=None)
        started_at = time.perf_counter()
        try:
            available = [model.id async for model in self._client.models.list()]
        except openai.NotFoundError:
            # Some compatible servers implement chat but not the model list: ask for one token.
            return await self._check_with_tiny_completion(started_at)
        except (openai.OpenAIError, ProviderAddressRefused) as error:
            return self._failed_check(error)
        latency_ms = (time.perf_counter() - started_at) * 1000
        wanted = self._config.model_name or ""
        if wanted in available:
            return passed_connection_check(self._where, wanted, started_at)
        return ConnectionCheck(
            ok=False,
            message=(
                f"Connected to {self._where}, but it does not list a model named '{wanted}'. "
                f"Models it lists: {listed_model_names([str(name) for name in available])}."
            ),
            latency_ms=latency_ms,
            reachable=True,
            status_code=200,
            model_found=False,
        )

    def _failed_check(self, error: openai.OpenAIError | ProviderAddressRefused) -> ConnectionCheck:
        if isinstance(error, ProviderAddressRefused):
            return failed_connection_check(address_failure(self._where, error), None)
        status = error.status_code if isinstance(error, openai.APIStatusError) else None
        return failed_connection_check(self._failure(error, answer_started=False, with_detail=False), status)

    async def _check_with_tiny_completion(self, started_at: float) -> ConnectionCheck:
        try:
            await self._client.chat.completions.create(
                model=self._config.model_name or "",
                messages=[{"role": "user", "content": "Reply with OK."}],
                max_tokens=1,
            )
        except (openai.OpenAIError, ProviderAddressRefused) as error:
            return self._failed_check(error)
        return passed_connection_check(self._where, self._config.model_name or "", started_at, answered=True)

    async def aclose(self) -> None:
        await self._client.close()


def _parameters_without_rejected_one(
    parameters: dict[str, Any], error: openai.APIStatusError
) -> dict[str, Any] | None:
    """The request with the one optional parameter the server complained about fixed, if any."""
    complaint = f"{error.message} {error.body}".lower()
    adjusted = dict(parameters)
    if "stream_options" in adjusted and "stream_options" in complaint:
        del adjusted["stream_options"]
        return adjusted
    if "max_tokens" in adjusted and "max_tokens" in complaint and "max_completion_tokens" in complaint:
        # Newer OpenAI models only accept the renamed parameter.
        adjusted["max_completion_tokens"] = adjusted.pop("max_tokens")
        return adjusted
    if "temperature" in adjusted and "temperature" in complaint:
        # Reasoning models accept only their default temperature.
        del adjusted["temperature"]
        return adjusted
    return None


async def _sse_data(response: Any) -> AsyncIterator[bytes]:
    """The `data` of each server-sent event of the response body (multi-line data joined)."""
    request = response.request
    pending = b""
    data: list[bytes] = []
    try:
        async for received in response.aiter_bytes():
            pending += received
            if b"\n" not in pending:
                continue
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line:
                    if data:
                        yield b"\n".join(data)
                        data = []
                elif line.startswith(b"data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(b" ") else value)
                # `event:`, `id:`, `retry:` and `:` comments carry nothing chat completions need.
    except _TIMEOUT_ERRORS as error:
        raise openai.APITimeoutError(request=request) from error
    except _TRANSPORT_ERRORS as error:
        raise openai.APIConnectionError(request=request) from error
    if pending.rstrip(b"\r").startswith(b"data:"):
        value = pending.rstrip(b"\r")[5:]
        data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data)


async def _drain(response: Any) -> None:
    """Read what is left of a finished stream without decoding it, briefly, then close it."""
    try:
        with anyio.move_on_after(_DRAIN_TIMEOUT_S):
            async for _ in response.stream:
                await checkpoint()  # keeps the deadline even on buffered data
    except (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream, httpx2.StreamConsumed):
        pass  # cleanup must not turn a complete answer into a failure
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(*_TRANSPORT_ERRORS):
            await response.aclose()


def _json_payload(data: bytes, response: Any) -> Any:
    try:
        payload = json.loads(data)
    except ValueError:
        raise openai.APIError(
            "The server sent a stream event that is not JSON.", request=response.request, body=None
        ) from None
    if isinstance(payload, dict) and payload.get("error"):
        # An error object sent inside the stream (HTTP status was already 200), as the SDK raises it.
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise openai.APIError(message=message, request=response.request, body=error)
    return payload
