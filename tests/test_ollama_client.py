"""The Ollama provider through the `ollama` package: only the model's own key is sent (never
OLLAMA_API_KEY from the environment), and a shared guarded client's pool outlives providers."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from gql_server.llm.base import TokenDelta
from gql_server.llm.guarded_http import ProviderHttpxClient
from gql_server.llm.registry import build_provider
from gql_server.llm.url_policy import UrlPolicy
from tests.fake_llm_servers import FakeBehaviour, FakeOllamaServer
from tests.test_llm_providers import REMOTE_CASES, collect, make_config, make_request

pytestmark = pytest.mark.asyncio
OLLAMA = REMOTE_CASES[0]


async def test_the_environments_ollama_key_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "env-key-that-must-stay-home")
    async with FakeOllamaServer(FakeBehaviour(tokens=["ok"])).serve() as server:
        async with contextlib.aclosing(
            build_provider(make_config(OLLAMA, server.base_url, api_key=None))
        ) as provider:
            events = await collect(provider, make_request())
            check = await provider.check_connection()
        headers = [
            {key.lower(): value for key, value in request.headers.items()} for request in server.requests
        ]
    assert any(isinstance(event, TokenDelta) for event in events) and check.ok, check.message
    assert len(headers) == 2 and all("authorization" not in sent for sent in headers), headers


async def test_the_models_key_replaces_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "env-key-that-must-stay-home")
    async with FakeOllamaServer(FakeBehaviour(required_api_key="model-key")).serve() as server:
        config = make_config(OLLAMA, server.base_url, api_key="model-key")
        async with contextlib.aclosing(build_provider(config)) as provider:
            check = await provider.check_connection()
    assert check.ok, check.message


async def test_providers_borrow_the_shared_pool_without_closing_it() -> None:
    shared = ProviderHttpxClient(UrlPolicy(allow_private=True), timeout=None, limits=httpx.Limits())
    try:
        async with FakeOllamaServer(FakeBehaviour(tokens=["one"])).serve() as server:
            for _ in range(2):
                provider = build_provider(make_config(OLLAMA, server.base_url), http_client=shared)
                async with contextlib.aclosing(provider):
                    assert (await provider.check_connection()).ok
            # The shared client still works after both providers closed.
            assert (await shared.get(server.base_url + "/api/tags")).status_code == 200
    finally:
        await shared.aclose()
