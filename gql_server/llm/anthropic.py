"""Anthropic's Messages API, spoken through the official `anthropic` client.

The client would otherwise look for credentials in the server's environment and config
files; ragql models carry their own key, so a model without one fails with a clear
message instead of silently billing the server operator's account.

The SDK gets an httpx2 client from gql_server.llm.guarded_http: connections only to the
base URL's origin, each address checked against the URL policy, redirects not followed,
and no client at all (so no key sent) when the key was entered for another origin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2

from gql_server.llm.base import (
    ChatTurn,
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
    provider_httpx2_client,
    redirect_failure,
)

logger = logging.getLogger(__name__)

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"


class AnthropicProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._base_url = (config.base_url or DEFAULT_ANTHROPIC_BASE_URL).rstrip("/")
        self._where = f"Anthropic at {self._base_url}"
        self._client: anthropic.AsyncAnthropic | None = None
        self._key_allowed = key_may_go_to(config.api_key, config.api_key_origin, self._base_url)
        if config.api_key and self._key_allowed:
            timeout = anthropic.Timeout(config.request_timeout_s, connect=config.connect_timeout_s)
            self._client = anthropic.AsyncAnthropic(
                api_key=config.api_key,
                base_url=self._base_url,
                max_retries=0,
                timeout=timeout,
                http_client=provider_httpx2_client(
                    config.url_policy, self._base_url, limits=httpx2.Limits(), timeout=timeout
                ),
            )

    def _no_client_failure(self) -> LLMProviderError:
        if not self._key_allowed:
            return key_origin_failure(self._where, self._config.api_key_origin or "")
        return authentication_failure(self._where, None, has_key=False)

    def _require_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            raise self._no_client_failure()
        return self._client

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        client = self._require_client()
        parameters: dict[str, Any] = {
            "model": self._config.model_name,
            "max_tokens": self._config.max_output_tokens,
            "system": request.system_prompt,
            "messages": _alternating_messages(request.messages),
            "stream": True,
            # This SDK version no longer lists `temperature`; the API still takes it for most
            # models, and the ones that refuse it get a retry without it below.
            "extra_body": {"temperature": self._config.temperature},
        }
        events = None
        for _ in range(2):
            try:
                events = await client.messages.create(**parameters)
                break
            except anthropic.BadRequestError as error:
                complaint = f"{error.message} {error.body}".lower()
                if "temperature" in complaint and parameters["extra_body"]:
                    parameters["extra_body"] = {}
                    continue
                raise self._failure(error, answer_started=False) from None
            except anthropic.AnthropicError as error:
                raise self._failure(error, answer_started=False) from None
            except ProviderAddressRefused as refused:
                raise address_failure(self._where, refused) from None
        if events is None:
            raise bad_request_failure(self._where, 400, "it rejected the request even without a temperature")

        answer_started = False
        message_stopped = False
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        stop_reason: str | None = None
        try:
            async for event in events:
                if event.type == "message_start":
                    prompt_tokens = _prompt_tokens(event.message.usage) or prompt_tokens
                    completion_tokens = event.message.usage.output_tokens
                elif event.type == "content_block_delta":
                    # Only text: thinking and tool-input deltas are not part of the answer.
                    if event.delta.type == "text_delta" and event.delta.text:
                        answer_started = True
                        yield TokenDelta(event.delta.text)
                elif event.type == "message_delta":
                    stop_reason = getattr(event.delta, "stop_reason", None) or stop_reason
                    # Counts in message_delta are cumulative, so the last one wins.
                    completion_tokens = event.usage.output_tokens
                    prompt_tokens = _prompt_tokens(event.usage) or prompt_tokens
                elif event.type == "message_stop":
                    message_stopped = True
        except anthropic.AnthropicError as error:
            raise self._failure(error, answer_started=answer_started) from None
        except httpx2.TransportError as error:
            # This SDK version lets transport errors during a stream escape unwrapped.
            raise self._transport_failure(error, answer_started=answer_started) from None
        finally:
            await events.close()
        if not message_stopped:
            raise stream_interrupted_failure(self._where)
        # stop_reason "max_tokens": the answer reached max_tokens and is cut off.
        yield Finish(stop_reason, truncated=stop_reason == "max_tokens")
        yield Usage(prompt_tokens, completion_tokens)

    def _failure(
        self, error: anthropic.AnthropicError, *, answer_started: bool, with_detail: bool = True
    ) -> LLMProviderError:
        logger.info("Anthropic request to %s failed: %s", self._base_url, type(error).__name__)
        if isinstance(error.__cause__, ProviderAddressRefused):  # the SDK wraps what the transport raised
            return address_failure(self._where, error.__cause__)
        if isinstance(error, anthropic.APITimeoutError):
            if type(error.__cause__).__name__ == "ConnectTimeout":
                return connect_timeout_failure(self._where, self._config.connect_timeout_s)
            return timeout_failure(self._where, self._config.request_timeout_s, during_answer=answer_started)
        if isinstance(error, anthropic.APIConnectionError):
            if answer_started:
                return stream_interrupted_failure(self._where)
            return connection_failure(self._where)
        if not isinstance(error, anthropic.APIStatusError):
            return provider_failure(self._where, None, None)
        if is_redirect(error.status_code):
            return redirect_failure(self._where, error.status_code)
        error_type, message = _error_type_and_message(error.body)
        full_detail = shorten_detail(redact_secret(message, self._config.api_key)) if message else None
        # Connection tests classify with the server's text but never repeat it.
        detail = full_detail if with_detail else None
        # Errors sent inside a stream arrive with the stream's HTTP 200; the status says nothing.
        status = error.status_code if error.status_code != 200 else None
        if error_type == "authentication_error" or status == 401:
            return authentication_failure(self._where, status, has_key=True)
        if error_type == "permission_error" or status == 403:
            return permission_failure(self._where, status, detail)
        if error_type == "not_found_error" or status == 404:
            if full_detail is None or "model" in full_detail.lower():
                return model_not_found_failure(self._where, self._config.model_name)
            return LLMProviderError(
                ErrorKind.PROVIDER_ERROR,
                f"{self._where} has no Messages API at this URL (HTTP 404){': ' + detail if detail else ''}. "
                "Check the base URL; it should not include /v1.",
                status_code=404,
            )
        if error_type == "rate_limit_error" or status == 429:
            return rate_limited_failure(self._where, status)
        if error_type == "overloaded_error" or status == 529:
            return rate_limited_failure(self._where, status, overloaded=True)
        if error_type == "invalid_request_error" or (status is not None and 400 <= status < 500):
            return bad_request_failure(self._where, status, detail)
        return provider_failure(self._where, status, detail)

    def _transport_failure(self, error: httpx2.TransportError, *, answer_started: bool) -> LLMProviderError:
        logger.info("Anthropic stream from %s failed: %s", self._base_url, type(error).__name__)
        if isinstance(error, httpx2.TimeoutException):
            return timeout_failure(self._where, self._config.request_timeout_s, during_answer=answer_started)
        if answer_started:
            return stream_interrupted_failure(self._where)
        return connection_failure(self._where)

    async def check_connection(self) -> ConnectionCheck:
        """Reachability, status, whether the model exists; never the server's own text."""
        if self._client is None:
            return ConnectionCheck(ok=False, message=self._no_client_failure().user_message, latency_ms=None)
        started_at = time.perf_counter()
        try:
            await self._client.models.retrieve(self._config.model_name or "")
        except anthropic.NotFoundError:
            # Proxies may lack the models endpoint: a one-token message tells the two cases apart.
            return await self._check_with_tiny_message(self._client, started_at)
        except (anthropic.AnthropicError, ProviderAddressRefused) as error:
            return self._failed_check(error)
        return passed_connection_check(self._where, self._config.model_name or "", started_at)

    def _failed_check(self, error: anthropic.AnthropicError | ProviderAddressRefused) -> ConnectionCheck:
        if isinstance(error, ProviderAddressRefused):
            return failed_connection_check(address_failure(self._where, error), None)
        status = error.status_code if isinstance(error, anthropic.APIStatusError) else None
        return failed_connection_check(self._failure(error, answer_started=False, with_detail=False), status)

    async def _check_with_tiny_message(
        self, client: anthropic.AsyncAnthropic, started_at: float
    ) -> ConnectionCheck:
        try:
            await client.messages.create(
                model=self._config.model_name or "",
                max_tokens=1,
                messages=[{"role": "user", "content": "Reply with OK."}],
            )
        except (anthropic.AnthropicError, ProviderAddressRefused) as error:
            return self._failed_check(error)
        return passed_connection_check(self._where, self._config.model_name or "", started_at, answered=True)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def _alternating_messages(turns: list[ChatTurn]) -> list[dict[str, str]]:
    """Turns as the Messages API wants them: starting with the user, roles alternating.

    History can break both rules (an unanswered question, a greeting by the assistant),
    so neighbouring turns of one role are joined rather than rejected by the API.
    """
    messages: list[dict[str, str]] = []
    for turn in turns:
        if not messages and turn.role == "assistant":
            continue
        if messages and messages[-1]["role"] == turn.role:
            messages[-1]["content"] += "\n\n" + turn.content
        else:
            messages.append({"role": turn.role, "content": turn.content})
    return messages


def _prompt_tokens(usage: Any) -> int | None:
    """Input tokens including cached ones, which the API counts separately."""
    parts = [
        getattr(usage, "input_tokens", None),
        getattr(usage, "cache_creation_input_tokens", None),
        getattr(usage, "cache_read_input_tokens", None),
    ]
    known = [part for part in parts if isinstance(part, int)]
    return sum(known) if known else None


def _error_type_and_message(body: object) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        return None, str(body) if body else None
    error = body.get("error", body)
    if not isinstance(error, dict):
        return None, str(error)
    error_type = error.get("type")
    message = error.get("message")
    return (str(error_type) if error_type else None, str(message) if message else None)
