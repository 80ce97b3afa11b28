"""HTTP clients for talking to providers: address policy checked at connection time, no
redirects, no proxy or credential settings taken from the environment, and the API key
only ever sent to the origin it was entered for.

How the address check holds against DNS rebinding. Checking a name and then handing the
URL to an HTTP client would let the client resolve the name a second time, and a hostile
DNS server can answer differently the second time (public at the check, 169.254.169.254
at the connect). So `GuardedTransport` resolves the name itself, checks every address it
got (url_policy.checked_addresses), and sends the request to the checked address: the
request's URL host is replaced by the IP for the duration of the send, while

- the Host header keeps the name (httpx sets it when the request is built, so the
  server sees the name it was asked for), and
- for https, the `sni_hostname` request extension (a documented httpcore extension)
  makes TLS send the name as SNI *and verify the certificate against the name*, so
  connecting by IP loses no TLS guarantee.

Each host name gets its own inner connection pool, so a pooled TLS connection made for
one name (and certificate) is never reused for another name that shares its address. A
connection that fails to open is retried on the name's next checked address (at most
three), standing in for the Happy Eyeballs fallback that connecting by name gave.

This works at the transport level, under any client logic: even if a client followed a
redirect (none here does), the follow-up request would pass through the same checks,
and a transport built with `allowed_origin` refuses any request to another origin, so a
key bound to one origin cannot leave through it. The same class serves httpx (Ollama)
and httpx2 (the `openai` and `anthropic` SDKs), which share this part of their API.

Environment proxies are not used (`trust_env=False`): through a proxy the check would see
the proxy, not the provider, and nothing outside Settings reads the environment.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import httpx2

from gql_server.llm.base import ErrorKind, LLMProviderError
from gql_server.llm.url_policy import (
    DEFAULT_PORTS,
    AddressRefused,
    UrlPolicy,
    checked_addresses,
    origin_text,
    url_origin,
)

logger = logging.getLogger(__name__)

MAX_ADDRESSES_TRIED = 3

REDIRECT_EXPLANATION = (
    "the provider answered with a redirect to another address; ragql does not follow redirects"
)


class ProviderAddressRefused(AddressRefused):
    """Raised by a guarded transport instead of connecting."""


class _GuardedTransportBase:
    def __init__(
        self,
        make_transport: Callable[[], Any],
        connect_error: type[httpx.ConnectError] | type[httpx2.ConnectError],
        policy: UrlPolicy,
        allowed_origin: str | None,
    ) -> None:
        self._make_transport = make_transport
        self._connect_error = connect_error
        self._policy = policy
        self._allowed_origin = allowed_origin
        self._transports: dict[str, Any] = {}

    def _transport_for(self, origin: str) -> Any:
        transport = self._transports.get(origin)
        if transport is None:
            transport = self._transports[origin] = self._make_transport()
        return transport

    async def _send(self, request: Any) -> Any:
        url = request.url
        scheme = url.scheme
        host = url.raw_host.decode("ascii")
        if scheme not in DEFAULT_PORTS:
            raise ProviderAddressRefused(f"ragql only calls providers over http or https, not {scheme}.")
        port = url.port or DEFAULT_PORTS[scheme]
        origin = origin_text(scheme, host, port)
        if self._allowed_origin is not None and origin != self._allowed_origin:
            raise ProviderAddressRefused(
                f"ragql does not send this model's requests to {origin}: they may only go to "
                f"{self._allowed_origin}, the address the model is configured with."
            )
        try:
            addresses = await checked_addresses(host, port, self._policy)
        except AddressRefused as refused:
            raise ProviderAddressRefused(refused.message) from None
        except (OSError, TimeoutError, UnicodeError) as error:
            raise self._connect_error(f"Could not resolve {host}: {error}", request=request) from None
        transport = self._transport_for(origin)
        original_url, original_extensions = request.url, request.extensions
        last_error: Exception | None = None
        try:
            for address in addresses[:MAX_ADDRESSES_TRIED]:
                request.url = url.copy_with(host=address)
                if scheme == "https":
                    request.extensions = {**original_extensions, "sni_hostname": host}
                try:
                    return await transport.handle_async_request(request)
                except self._connect_error as error:  # nothing was sent: the next address may work
                    last_error = error
        finally:
            request.url, request.extensions = original_url, original_extensions
        assert last_error is not None
        raise last_error

    async def _close_all(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()


class GuardedHttpxTransport(_GuardedTransportBase, httpx.AsyncBaseTransport):
    def __init__(
        self,
        policy: UrlPolicy,
        *,
        allowed_origin: str | None = None,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(
            lambda: httpx.AsyncHTTPTransport(limits=limits, trust_env=False, verify=verify),
            httpx.ConnectError,
            policy,
            allowed_origin,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await self._send(request)
        return response

    async def aclose(self) -> None:
        await self._close_all()


class GuardedHttpx2Transport(_GuardedTransportBase, httpx2.AsyncBaseTransport):
    def __init__(
        self,
        policy: UrlPolicy,
        *,
        allowed_origin: str | None = None,
        limits: httpx2.Limits,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(
            lambda: httpx2.AsyncHTTPTransport(limits=limits, trust_env=False, verify=verify),
            httpx2.ConnectError,
            policy,
            allowed_origin,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response: httpx2.Response = await self._send(request)
        return response

    async def aclose(self) -> None:
        await self._close_all()


class ProviderHttpxClient(httpx.AsyncClient):
    """An httpx client whose every connection passes `url_policy` (shareable by providers
    with the same policy; see OllamaProvider)."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        **kwargs: Any,
    ) -> None:
        self.url_policy = policy
        # Public so a client library that builds its own httpx client (the `ollama` package)
        # can be handed this one's checked connections.
        self.guarded_transport = GuardedHttpxTransport(policy, limits=limits or httpx.Limits(), verify=verify)
        super().__init__(
            transport=self.guarded_transport,
            follow_redirects=False,
            trust_env=False,
            **kwargs,
        )


def provider_httpx2_client(
    policy: UrlPolicy, base_url: str, *, limits: httpx2.Limits, timeout: Any
) -> httpx2.AsyncClient:
    """The client for one SDK-based provider: only `base_url`'s origin, checked, no redirects."""
    return httpx2.AsyncClient(
        transport=GuardedHttpx2Transport(policy, allowed_origin=url_origin(base_url), limits=limits),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout,
    )


# --- failures ------------------------------------------------------------------------------


def address_failure(where: str, refused: AddressRefused) -> LLMProviderError:
    return LLMProviderError(ErrorKind.CONNECTION, f"ragql did not connect to {where}. {refused.message}")


def redirect_failure(where: str, status_code: int) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.PROVIDER_ERROR,
        f"{where[:1].upper()}{where[1:]} answered HTTP {status_code}: {REDIRECT_EXPLANATION}. "
        "Use the address the provider redirects to as the base URL.",
        status_code=status_code,
    )


def is_redirect(status_code: int | None) -> bool:
    return status_code is not None and 300 <= status_code < 400


def key_origin_failure(where: str, key_origin: str) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.AUTHENTICATION,
        f"The model's API key was entered for {key_origin}, and ragql sends it nowhere else; "
        f"it was not sent to {where}. Enter the API key again in the model's settings.",
    )


def key_may_go_to(api_key: str | None, api_key_origin: str | None, base_url: str) -> bool:
    """False when a key bound to one origin would be sent to another."""
    return not api_key or api_key_origin is None or api_key_origin == url_origin(base_url)


_MODEL_NAME_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")


def listed_model_names(names: list[str], limit: int = 10) -> str:
    """Model names a server listed, for a connection test's message: only strings shaped
    like model identifiers, at most `limit`, so the message never carries arbitrary text
    from whatever the URL points at."""
    shown = [name for name in names if _MODEL_NAME_SHAPE.fullmatch(name)][:limit]
    hidden = len(names) - len(shown)
    if not names:
        return "none"
    if not shown:
        return f"{len(names)} with unusual names"
    return ", ".join(shown) + (f" (and {hidden} more)" if hidden > 0 else "")
