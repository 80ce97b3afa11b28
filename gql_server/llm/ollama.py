"""Ollama's native chat API (`POST /api/chat`, `GET /api/tags`) through the official
`ollama` client.

The native API rather than Ollama's OpenAI-compatible one because only the native API
accepts `num_ctx`: without it Ollama silently truncates long prompts to its default
context, which would cut off the retrieved passages without any error.

The `ollama` client builds its own httpx client from keyword arguments, so the guard is
handed to it as the transport (gql_server.llm.guarded_http): every address is checked
against the model's URL policy when connecting, requests may only go to the base URL's
origin, redirects are not followed (`follow_redirects=False`: a 3xx is reported as such),
no proxy settings are read from the environment (`trust_env=False`), and the key is only
sent if it was entered for this base URL's origin. The client would add a bearer token
from the OLLAMA_API_KEY environment variable when we set none; a request hook removes it,
so only the key entered for the model is ever sent. Providers built with the generation
manager's shared `ProviderHttpxClient` borrow its transport (one pool for every Ollama
model) and never close it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import httpx
import ollama

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
    passed_connection_check,
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
    GuardedHttpxTransport,
    ProviderAddressRefused,
    ProviderHttpxClient,
    address_failure,
    is_redirect,
    key_may_go_to,
    key_origin_failure,
    listed_model_names,
    redirect_failure,
)
from gql_server.llm.url_policy import url_origin

logger = logging.getLogger(__name__)

DEFAULT_OLLAMA_BASE_URL = "http://localhost:11434"


class _BorrowedTransport(httpx.AsyncBaseTransport):
    """A shared transport lent to one provider's client: closing the client leaves it open."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass


class OllamaProvider:
    def __init__(self, config: ProviderConfig, *, http_client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._base_url = (config.base_url or DEFAULT_OLLAMA_BASE_URL).rstrip("/")
        self._where = f"the Ollama server at {self._base_url}"
        self._timeout = httpx.Timeout(config.request_timeout_s, connect=config.connect_timeout_s)
        self._key_allowed = key_may_go_to(config.api_key, config.api_key_origin, self._base_url)
        # A shared client's transport is used only when it enforces this model's URL policy;
        # any other client (a plain httpx one) would connect wherever DNS says.
        self._shared = (
            http_client.guarded_transport
            if isinstance(http_client, ProviderHttpxClient) and http_client.url_policy == config.url_policy
            else None
        )
        self._client: ollama.AsyncClient | None = None

    def _ollama(self) -> ollama.AsyncClient:
        if self._client is None:
            transport: httpx.AsyncBaseTransport = (
                _BorrowedTransport(self._shared)
                if self._shared is not None
                else GuardedHttpxTransport(
                    self._config.url_policy, allowed_origin=url_origin(self._base_url), limits=httpx.Limits()
                )
            )
            authorization = self._authorization()

            async def only_the_models_key(request: httpx.Request) -> None:
                if authorization is None:
                    request.headers.pop("authorization", None)
                else:
                    request.headers["authorization"] = authorization

            self._client = ollama.AsyncClient(
                host=self._base_url,
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                timeout=self._timeout,
                event_hooks={"request": [only_the_models_key]},
            )
        return self._client

    def _authorization(self) -> str | None:
        # Plain Ollama needs no key; one set here is for Ollama behind an authenticating
        # proxy or a hosted Ollama, which expect a bearer token.
        if self._config.api_key and self._key_allowed:
            return f"Bearer {self._config.api_key}"
        return None

    def _refuse_foreign_key(self) -> None:
        if not self._key_allowed:
            raise key_origin_failure(self._where, self._config.api_key_origin or "")

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "temperature": self._config.temperature,
            "num_predict": self._config.max_output_tokens,
        }
        if self._config.context_window_tokens:
            options["num_ctx"] = self._config.context_window_tokens
        return options

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        self._refuse_foreign_key()
        answer_started = False
        finished = False
        usage = Usage(prompt_tokens=None, completion_tokens=None)
        done_reason: Any = None
        messages = [{"role": "system", "content": request.system_prompt}]
        messages += [{"role": turn.role, "content": turn.content} for turn in request.messages]
        try:
            chunks = await self._ollama().chat(
                model=self._config.model_name or "", messages=messages, stream=True, options=self._options()
            )
            # The client's stream is an async generator holding the response open: close it
            # when we stop at the final chunk.
            async with contextlib.aclosing(cast(AsyncGenerator[ollama.ChatResponse, None], chunks)):
                while True:
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    except (ValueError, AttributeError, TypeError):
                        # json.loads or the client's pydantic model refused a line.
                        raise invalid_response_failure(
                            self._where, "a line of the stream is not a JSON chat chunk"
                        ) from None
                    # `thinking` (reasoning models) is deliberately not streamed: users see the answer.
                    content = chunk.message.content if chunk.message is not None else None
                    if content:
                        answer_started = True
                        yield TokenDelta(content)
                    if chunk.done:
                        finished = True
                        usage = Usage(chunk.prompt_eval_count, chunk.eval_count)
                        done_reason = chunk.done_reason
                        break
        except ollama.ResponseError as error:
            if error.status_code == -1:  # an {"error": ...} line inside the stream
                raise self._error_line_failure(str(error.error)) from None
            raise self._status_failure(error.status_code, _error_text(error)) from None
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

    def _error_line_failure(self, error_text: str) -> LLMProviderError:
        detail = shorten_detail(redact_secret(error_text, self._config.api_key))
        if "not found" in error_text.lower() and "model" in error_text.lower():
            return model_not_found_failure(self._where, self._config.model_name, self._pull_hint())
        return provider_failure(self._where, None, detail)

    def _pull_hint(self) -> str:
        return f"(or download it on that server with `ollama pull {self._config.model_name}`)"

    def _status_failure(self, status_code: int, error_text: str | None) -> LLMProviderError:
        if is_redirect(status_code):
            return redirect_failure(self._where, status_code)
        detail = shorten_detail(redact_secret(error_text, self._config.api_key)) if error_text else None
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
            listed = await self._ollama().list()
        except ollama.ResponseError as error:
            status = error.status_code
            failure = self._status_failure(status, None)
            if failure.kind is ErrorKind.MODEL_NOT_FOUND or status == 404:
                # /api/tags takes no model, so a 404 here means the URL is not Ollama's API.
                failure = invalid_response_failure(self._where, "HTTP 404 for /api/tags")
            return ConnectionCheck(
                ok=False,
                message=failure.user_message,
                latency_ms=(time.perf_counter() - started_at) * 1000,
                reachable=True,
                status_code=status,
            )
        except (httpx.TransportError, ConnectionError) as error:
            # The client turns httpx.ConnectError into the built-in ConnectionError.
            failure = (
                self._transport_failure(error, answer_started=False)
                if isinstance(error, httpx.TransportError)
                else connection_failure(self._where)
            )
            return ConnectionCheck(ok=False, message=failure.user_message, latency_ms=None)
        except ProviderAddressRefused as refused:
            return ConnectionCheck(
                ok=False, message=address_failure(self._where, refused).user_message, latency_ms=None
            )
        except (ValueError, AttributeError, TypeError):
            failure = invalid_response_failure(self._where, "/api/tags did not return a model list")
            return ConnectionCheck(
                ok=False,
                message=failure.user_message,
                latency_ms=(time.perf_counter() - started_at) * 1000,
                reachable=True,
                status_code=200,
            )
        latency_ms = (time.perf_counter() - started_at) * 1000
        status = 200  # the client raises for anything but 2xx
        available = [str(model.model) for model in listed.models]
        wanted = self._config.model_name or ""
        if _ollama_model_is_listed(wanted, available):
            return passed_connection_check(self._where, wanted, started_at)
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
        # A borrowed (shared) transport stays open: _BorrowedTransport.aclose does nothing.
        if self._client is not None:
            await self._client.close()
            self._client = None


def _ollama_model_is_listed(wanted: str, available: list[str]) -> bool:
    # Ollama resolves an untagged name to its ":latest" tag, and lists models with the tag.
    return wanted in available or (":" not in wanted and f"{wanted}:latest" in available)


def _error_text(error: ollama.ResponseError) -> str | None:
    # The client already took "error" out of a JSON body; an empty body leaves "".
    text = str(error.error).strip()
    return text or None
