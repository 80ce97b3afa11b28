"""Ollama's native chat API (`POST /api/chat`, newline-delimited JSON), spoken with httpx.

The native API rather than Ollama's OpenAI-compatible one because only the native API
accepts `num_ctx`: without it Ollama silently truncates long prompts to its default
context, which would cut off the retrieved passages without any error.

Connections go through a `ProviderHttpxClient` (gql_server.llm.guarded_http): every
address is checked against the model's URL policy when connecting, redirects are not
followed (a 3xx is reported as such), and the key is only sent if it was entered for
this base URL's origin.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

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
    redact_secret,
    shorten_detail,
)
from gql_server.llm.failure_messages import (
    authentication_failure,
    bad_request_failure,
    connect_timeout_failure,
    connection_failure,
    invalid_response_failure,
    model_not_found_failure,
    provider_failure,
    rate_limited_failure,
    stream_interrupted_failure,
    timeout_failure,
)
from gql_server.llm.guarded_http import (
    ProviderAddressRefused,
    ProviderHttpxClient,
    address_failure,
    is_redirect,
    key_may_go_to,
    key_origin_failure,
    listed_model_names,
    redirect_failure,
)

logger = logging.getLogger(__name__)

DEFAULT_OLLAMA_BASE_URL = "http://localhost:11434"


class OllamaProvider:
    def __init__(self, config: ProviderConfig, *, http_client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._base_url = (config.base_url or DEFAULT_OLLAMA_BASE_URL).rstrip("/")
        self._where = f"the Ollama server at {self._base_url}"
        # Passed on every request so the configured timeouts apply to an injected client too.
        self._timeout = httpx.Timeout(config.request_timeout_s, connect=config.connect_timeout_s)
        self._key_allowed = key_may_go_to(config.api_key, config.api_key_origin, self._base_url)
        # A shared client is used only when it enforces this model's URL policy; any other
        # client (a plain httpx one) would connect wherever DNS says.
        shared = isinstance(http_client, ProviderHttpxClient) and http_client.url_policy == config.url_policy
        self._client: httpx.AsyncClient | None = http_client if shared else None
        self._owns_client = not shared

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = ProviderHttpxClient(self._config.url_policy, timeout=self._timeout)
        return self._client

    def _headers(self) -> dict[str, str]:
        # Plain Ollama needs no key; one set here is for Ollama behind an authenticating
        # proxy or a hosted Ollama, which expect a bearer token.
        if self._config.api_key and self._key_allowed:
            return {"Authorization": f"Bearer {self._config.api_key}"}
        return {}

    def _refuse_foreign_key(self) -> None:
        if not self._key_allowed:
            raise key_origin_failure(self._where, self._config.api_key_origin or "")

    def _chat_payload(self, request: GenerationRequest) -> dict[str, Any]:
        options: dict[str, Any] = {
            "temperature": self._config.temperature,
            "num_predict": self._config.max_output_tokens,
        }
        if self._config.context_window_tokens:
            options["num_ctx"] = self._config.context_window_tokens
        messages = [{"role": "system", "content": request.system_prompt}]
        messages += [{"role": turn.role, "content": turn.content} for turn in request.messages]
        return {"model": self._config.model_name, "messages": messages, "stream": True, "options": options}

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        self._refuse_foreign_key()
        answer_started = False
        finished = False
        usage = Usage(prompt_tokens=None, completion_tokens=None)
        done_reason: Any = None
        try:
            async with self._http().stream(
                "POST",
                f"{self._base_url}/api/chat",
                json=self._chat_payload(request),
                headers=self._headers(),
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                if is_redirect(response.status_code):
                    raise redirect_failure(self._where, response.status_code)
                if response.status_code != 200:
                    body = await response.aread()
                    raise self._status_failure(response.status_code, body)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    item = self._parse_line(line)
                    if "error" in item:
                        raise self._error_line_failure(str(item["error"]))
                    message = item.get("message") or {}
                    # `thinking` (reasoning models) is deliberately not streamed: users see the answer.
                    content = message.get("content") if isinstance(message, dict) else None
                    if content:
                        answer_started = True
                        yield TokenDelta(content)
                    if item.get("done"):
                        finished = True
                        usage = Usage(item.get("prompt_eval_count"), item.get("eval_count"))
                        done_reason = item.get("done_reason")
                        break
        except httpx.TransportError as error:
            raise self._transport_failure(error, answer_started=answer_started) from None
        except ProviderAddressRefused as refused:
            raise address_failure(self._where, refused) from None
        if not finished:
            raise stream_interrupted_failure(self._where)
        # done_reason "length": num_predict was reached (older servers send no done_reason).
        reason = done_reason if isinstance(done_reason, str) else None
        yield Finish(reason, truncated=reason == "length")
        yield usage

    def _parse_line(self, line: str) -> dict[str, Any]:
        try:
            item = json.loads(line)
        except ValueError:
            raise invalid_response_failure(self._where, "a line of the stream is not JSON") from None
        if not isinstance(item, dict):
            raise invalid_response_failure(self._where, "a line of the stream is not a JSON object")
        return item

    def _error_line_failure(self, error_text: str) -> LLMProviderError:
        detail = shorten_detail(redact_secret(error_text, self._config.api_key))
        if "not found" in error_text.lower() and "model" in error_text.lower():
            return model_not_found_failure(self._where, self._config.model_name, self._pull_hint())
        return provider_failure(self._where, None, detail)

    def _pull_hint(self) -> str:
        return f"(or download it on that server with `ollama pull {self._config.model_name}`)"

    def _status_failure(self, status_code: int, body: bytes, *, with_detail: bool = True) -> LLMProviderError:
        if is_redirect(status_code):
            return redirect_failure(self._where, status_code)
        error_text = _error_text_from_body(body)
        detail = shorten_detail(redact_secret(error_text, self._config.api_key)) if error_text else None
        if not with_detail:
            detail = None
        if status_code in (401, 403):
            return authentication_failure(self._where, status_code, has_key=bool(self._config.api_key))
        if status_code == 404:
            if error_text and "not found" in error_text.lower():
                return model_not_found_failure(self._where, self._config.model_name, self._pull_hint())
            # A bare 404 page means the URL does not lead to Ollama's API at all.
            return LLMProviderError(
                ErrorKind.PROVIDER_ERROR,
                f"{self._where[:1].upper()}{self._where[1:]} has no /api/chat endpoint (HTTP 404). "
                "Check that the base URL is the Ollama server's root, such as http://localhost:11434.",
                status_code=404,
            )
        if status_code == 429:
            return rate_limited_failure(self._where, status_code)
        if status_code == 503:
            # Ollama answers 503 when its queue of pending requests is full.
            return rate_limited_failure(self._where, status_code, overloaded=True)
        if 400 <= status_code < 500:
            return bad_request_failure(self._where, status_code, detail)
        return provider_failure(self._where, status_code, detail)

    def _transport_failure(self, error: httpx.TransportError, *, answer_started: bool) -> LLMProviderError:
        logger.info("Ollama request to %s failed: %s", self._base_url, type(error).__name__)
        if isinstance(error, httpx.ConnectTimeout):
            return connect_timeout_failure(self._where, self._config.connect_timeout_s)
        if isinstance(error, httpx.TimeoutException):
            return timeout_failure(self._where, self._config.request_timeout_s, during_answer=answer_started)
        if isinstance(error, httpx.ConnectError | httpx.UnsupportedProtocol):
            return connection_failure(self._where)
        if answer_started:
            return stream_interrupted_failure(self._where)
        # Closed before the first token: from the user's side the server just went away.
        return connection_failure(self._where)

    async def check_connection(self) -> ConnectionCheck:
        """Reachability, status, whether the model is installed; never the server's own text."""
        if not self._key_allowed:
            failure = key_origin_failure(self._where, self._config.api_key_origin or "")
            return ConnectionCheck(ok=False, message=failure.user_message, latency_ms=None)
        started_at = time.perf_counter()
        try:
            response = await self._http().get(
                f"{self._base_url}/api/tags",
                headers=self._headers(),
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TransportError as error:
            failure = self._transport_failure(error, answer_started=False)
            return ConnectionCheck(ok=False, message=failure.user_message, latency_ms=None)
        except ProviderAddressRefused as refused:
            return ConnectionCheck(
                ok=False, message=address_failure(self._where, refused).user_message, latency_ms=None
            )
        latency_ms = (time.perf_counter() - started_at) * 1000
        status = response.status_code
        if status != 200:
            failure = self._status_failure(status, b"", with_detail=False)
            if failure.kind is ErrorKind.MODEL_NOT_FOUND or status == 404:
                # /api/tags takes no model, so a 404 here means the URL is not Ollama's API.
                failure = invalid_response_failure(self._where, "HTTP 404 for /api/tags")
            return ConnectionCheck(
                ok=False,
                message=failure.user_message,
                latency_ms=latency_ms,
                reachable=True,
                status_code=status,
            )
        try:
            models = response.json().get("models") or []
            available = [str(model.get("name") or model.get("model")) for model in models]
        except (ValueError, AttributeError):
            failure = invalid_response_failure(self._where, "/api/tags did not return a model list")
            return ConnectionCheck(
                ok=False,
                message=failure.user_message,
                latency_ms=latency_ms,
                reachable=True,
                status_code=status,
            )
        wanted = self._config.model_name or ""
        if _ollama_model_is_listed(wanted, available):
            return ConnectionCheck(
                ok=True,
                message=f"Connected to {self._where}; model '{wanted}' is available.",
                latency_ms=latency_ms,
                reachable=True,
                status_code=status,
                model_found=True,
            )
        return ConnectionCheck(
            ok=False,
            message=(
                f"Connected to {self._where}, but it has no model named '{wanted}'. Download it there "
                f"with `ollama pull {wanted}`, or use one of the installed models: "
                f"{listed_model_names(available)}."
            ),
            latency_ms=latency_ms,
            reachable=True,
            status_code=status,
            model_found=False,
        )

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None


def _ollama_model_is_listed(wanted: str, available: list[str]) -> bool:
    # Ollama resolves an untagged name to its ":latest" tag, and lists models with the tag.
    return wanted in available or (":" not in wanted and f"{wanted}:latest" in available)


def _error_text_from_body(body: bytes) -> str | None:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict) and "error" in parsed:
        return str(parsed["error"])
    return text
