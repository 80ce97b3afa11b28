"""The providers against fake servers speaking each vendor's real wire format over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gql_server.llm.base import (
    ContextPassage,
    ErrorKind,
    GenerationEvent,
    GenerationRequest,
    LLMProvider,
    LLMProviderError,
    ProviderConfig,
    ProviderKind,
    TokenDelta,
    Usage,
)
from gql_server.llm.extractive import NO_PASSAGES_ANSWER, ExtractiveProvider, compose_extractive_answer
from gql_server.llm.registry import build_provider, effective_base_url, validate_provider_config
from gql_server.llm.url_policy import UrlPolicy
from gql_server.rag.citations import extract_citations
from gql_server.rag.prompt import build_generation_request
from tests.fake_llm_servers import (
    DEFAULT_MODEL_NAME,
    FailureMode,
    FakeAnthropicServer,
    FakeBehaviour,
    FakeLLMServer,
    FakeOllamaServer,
    FakeOpenAIServer,
)

API_KEY = "sk-test-secret-key-0123456789"
SHORT_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class RemoteProviderCase:
    kind: ProviderKind
    server_class: type[FakeLLMServer]

    def __str__(self) -> str:
        return self.kind.value


REMOTE_CASES = [
    RemoteProviderCase(ProviderKind.OLLAMA, FakeOllamaServer),
    RemoteProviderCase(ProviderKind.OPENAI_COMPATIBLE, FakeOpenAIServer),
    RemoteProviderCase(ProviderKind.ANTHROPIC, FakeAnthropicServer),
]

remote_providers = pytest.mark.parametrize("case", REMOTE_CASES, ids=str)


def make_config(
    case: RemoteProviderCase,
    base_url: str,
    *,
    api_key: str | None = API_KEY,
    model_name: str = DEFAULT_MODEL_NAME,
    request_timeout_s: float = 5.0,
    context_window_tokens: int | None = None,
) -> ProviderConfig:
    return ProviderConfig(
        kind=case.kind,
        model_name=model_name,
        base_url=base_url,
        api_key=api_key,
        temperature=0.3,
        max_output_tokens=256,
        request_timeout_s=request_timeout_s,
        connect_timeout_s=2.0,
        context_window_tokens=context_window_tokens,
        url_policy=UrlPolicy(allow_private=True),  # the fake servers listen on 127.0.0.1
    )


PASSAGES = [
    ContextPassage(
        number=1,
        document_title="Battery handbook",
        text="The battery charges fully in 90 minutes. Charging above 45 °C is blocked.",
        location_label="p. 12",
        score=0.91,
    ),
    ContextPassage(
        number=2,
        document_title="Warranty terms",
        text="The warranty covers the battery for two years. Damage from water is excluded.",
        location_label="pp. 3–4",
        score=0.74,
    ),
]


def make_request(question: str = "How long does the battery take to charge?") -> GenerationRequest:
    return build_generation_request(
        system_prompt=None,
        passages=PASSAGES,
        history=[],
        question=question,
        context_window_tokens=4096,
        max_output_tokens=256,
    )


async def collect(provider: LLMProvider, request: GenerationRequest) -> list[GenerationEvent]:
    return [event async for event in provider.stream(request)]


async def collect_until_failure(
    provider: LLMProvider, request: GenerationRequest
) -> tuple[list[str], LLMProviderError]:
    received: list[str] = []
    with pytest.raises(LLMProviderError) as caught:
        async for event in provider.stream(request):
            if isinstance(event, TokenDelta):
                received.append(event.text)
    return received, caught.value


def closed_port_url(case: RemoteProviderCase) -> str:
    # Bind and release a port so nothing is listening on it when the provider connects.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}" + ("/v1" if case.kind is ProviderKind.OPENAI_COMPATIBLE else "")


def assert_no_secret(error: LLMProviderError) -> None:
    for text in (error.user_message, str(error), repr(error)):
        assert API_KEY not in text
        assert API_KEY[-8:] not in text


# --- streaming -------------------------------------------------------------------------


@pytest.mark.asyncio
@remote_providers
async def test_tokens_arrive_in_order_with_usage_and_the_prompt_carries_the_passages(
    case: RemoteProviderCase,
) -> None:
    tokens = ["It", " charges", " in", " 90", " minutes", " [1]."]
    async with case.server_class(FakeBehaviour(tokens=tokens, prompt_tokens=77)).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            events = await collect(provider, make_request())
        finally:
            await provider.aclose()

        deltas = [event.text for event in events if isinstance(event, TokenDelta)]
        assert deltas == tokens
        assert "".join(deltas) == "It charges in 90 minutes [1]."
        assert events[-1] == Usage(prompt_tokens=77, completion_tokens=len(tokens))

        (recorded,) = server.chat_requests()
        sent = json.dumps(recorded.body, ensure_ascii=False)
        assert "The battery charges fully in 90 minutes." in sent
        assert "[2] Warranty terms (pp. 3–4)" in sent
        assert "How long does the battery take to charge?" in sent
        assert recorded.first_token_sent_at is not None
        assert recorded.first_token_sent_at >= recorded.received_at


@pytest.mark.asyncio
@remote_providers
async def test_tokens_are_yielded_as_they_arrive_not_after_the_whole_answer(case: RemoteProviderCase) -> None:
    behaviour = FakeBehaviour(tokens=["a", "b", "c", "d"], token_delay_s=0.1)
    async with case.server_class(behaviour).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        arrival_times: list[float] = []
        try:
            async for event in provider.stream(make_request()):
                if isinstance(event, TokenDelta):
                    arrival_times.append(time.perf_counter())
        finally:
            await provider.aclose()
    assert len(arrival_times) == 4
    assert arrival_times[-1] - arrival_times[0] >= 0.25


@pytest.mark.asyncio
@remote_providers
async def test_system_prompt_and_settings_reach_the_server(case: RemoteProviderCase) -> None:
    async with case.server_class().serve() as server:
        provider = build_provider(make_config(case, server.base_url, context_window_tokens=8192))
        try:
            await collect(provider, make_request())
        finally:
            await provider.aclose()
        body = server.chat_requests()[0].body
    request = make_request()
    if case.kind is ProviderKind.ANTHROPIC:
        assert body["system"] == request.system_prompt
        assert body["max_tokens"] == 256
        assert body["temperature"] == 0.3
        assert body["messages"][0]["role"] == "user"
        assert server.chat_requests()[0].headers.get("anthropic-version")
        headers = server.chat_requests()[0].headers
        assert API_KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    else:
        assert body["messages"][0] == {"role": "system", "content": request.system_prompt}
    if case.kind is ProviderKind.OLLAMA:
        assert body["options"] == {"temperature": 0.3, "num_predict": 256, "num_ctx": 8192}
        assert body["stream"] is True
    if case.kind is ProviderKind.OPENAI_COMPATIBLE:
        assert body["max_tokens"] == 256
        assert body["stream_options"] == {"include_usage": True}


# --- failures before the answer -----------------------------------------------------------


@pytest.mark.asyncio
@remote_providers
async def test_wrong_api_key_is_an_authentication_error_that_does_not_repeat_the_key(
    case: RemoteProviderCase,
) -> None:
    async with case.server_class(FakeBehaviour(required_api_key="the-right-key")).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            received, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
    assert received == []
    assert error.kind is ErrorKind.AUTHENTICATION
    assert "API key" in error.user_message
    assert server.base_url.rstrip("/") in error.user_message
    assert_no_secret(error)


@pytest.mark.asyncio
@remote_providers
async def test_unknown_model_is_model_not_found(case: RemoteProviderCase) -> None:
    async with case.server_class().serve() as server:
        provider = build_provider(make_config(case, server.base_url, model_name="no-such-model"))
        try:
            _, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
    assert error.kind is ErrorKind.MODEL_NOT_FOUND
    assert "'no-such-model'" in error.user_message


@pytest.mark.asyncio
@remote_providers
async def test_http_429_is_rate_limited(case: RemoteProviderCase) -> None:
    async with case.server_class(FakeBehaviour(rate_limited=True)).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            _, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
    assert error.kind is ErrorKind.RATE_LIMITED
    assert "429" in error.user_message


@pytest.mark.asyncio
@remote_providers
async def test_refused_connection_is_a_connection_error(case: RemoteProviderCase) -> None:
    url = closed_port_url(case)
    provider = build_provider(make_config(case, url))
    try:
        _, error = await collect_until_failure(provider, make_request())
    finally:
        await provider.aclose()
    assert error.kind is ErrorKind.CONNECTION
    assert url.rstrip("/") in error.user_message


@pytest.mark.asyncio
@remote_providers
async def test_server_that_never_answers_times_out_within_the_configured_timeout(
    case: RemoteProviderCase,
) -> None:
    async with case.server_class(FakeBehaviour(initial_delay_s=30)).serve() as server:
        provider = build_provider(make_config(case, server.base_url, request_timeout_s=SHORT_TIMEOUT_S))
        started = time.perf_counter()
        try:
            _, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
        elapsed = time.perf_counter() - started
    assert error.kind is ErrorKind.TIMEOUT
    assert SHORT_TIMEOUT_S * 0.9 <= elapsed < SHORT_TIMEOUT_S + 1.5
    assert "0.5 seconds" in error.user_message


# --- failures in the middle of the answer -------------------------------------------------


@pytest.mark.asyncio
@remote_providers
async def test_dropped_connection_mid_stream_fails_after_the_first_tokens(case: RemoteProviderCase) -> None:
    behaviour = FakeBehaviour(tokens=["one", " two", " three", " four"], fail_after_tokens=2)
    async with case.server_class(behaviour).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            received, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
    assert received == ["one", " two"]
    assert error.kind is ErrorKind.STREAM_INTERRUPTED


@pytest.mark.asyncio
@remote_providers
async def test_server_that_stops_mid_stream_times_out_after_the_first_tokens(
    case: RemoteProviderCase,
) -> None:
    behaviour = FakeBehaviour(
        tokens=["one", " two", " three"], fail_after_tokens=1, failure_mode=FailureMode.HANG
    )
    async with case.server_class(behaviour).serve() as server:
        provider = build_provider(make_config(case, server.base_url, request_timeout_s=SHORT_TIMEOUT_S))
        started = time.perf_counter()
        try:
            received, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
        elapsed = time.perf_counter() - started
    assert received == ["one"]
    assert error.kind is ErrorKind.TIMEOUT
    assert "stopped sending" in error.user_message
    assert elapsed < SHORT_TIMEOUT_S + 1.5


@pytest.mark.asyncio
@remote_providers
async def test_error_event_mid_stream_fails_after_the_first_tokens(case: RemoteProviderCase) -> None:
    behaviour = FakeBehaviour(
        tokens=["one", " two", " three"], fail_after_tokens=2, failure_mode=FailureMode.ERROR_EVENT
    )
    async with case.server_class(behaviour).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            received, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
    assert received == ["one", " two"]
    if case.kind is ProviderKind.ANTHROPIC:
        # The fake's default in-stream error is Anthropic's overloaded_error.
        assert error.kind is ErrorKind.RATE_LIMITED
        assert "overloaded" in error.user_message
    else:
        assert error.kind is ErrorKind.PROVIDER_ERROR
    assert_no_secret(error)


@pytest.mark.asyncio
@remote_providers
async def test_stream_that_ends_without_its_finish_marker_is_interrupted(case: RemoteProviderCase) -> None:
    behaviour = FakeBehaviour(
        tokens=["one", " two"], fail_after_tokens=1, failure_mode=FailureMode.END_WITHOUT_FINISH
    )
    async with case.server_class(behaviour).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            received, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
    assert received == ["one"]
    assert error.kind is ErrorKind.STREAM_INTERRUPTED


# --- test connection -----------------------------------------------------------------------


@pytest.mark.asyncio
@remote_providers
async def test_check_connection_succeeds_for_a_known_model(case: RemoteProviderCase) -> None:
    async with case.server_class().serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            check = await provider.check_connection()
        finally:
            await provider.aclose()
    assert check.ok, check.message
    assert check.latency_ms is not None and check.latency_ms >= 0
    assert DEFAULT_MODEL_NAME in check.message


@pytest.mark.asyncio
@remote_providers
async def test_check_connection_reports_an_unknown_model(case: RemoteProviderCase) -> None:
    async with case.server_class().serve() as server:
        provider = build_provider(make_config(case, server.base_url, model_name="no-such-model"))
        try:
            check = await provider.check_connection()
        finally:
            await provider.aclose()
    assert not check.ok
    assert "no-such-model" in check.message


@pytest.mark.asyncio
@remote_providers
async def test_check_connection_reports_a_wrong_key_and_an_unreachable_server(
    case: RemoteProviderCase,
) -> None:
    async with case.server_class(FakeBehaviour(required_api_key="the-right-key")).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            wrong_key = await provider.check_connection()
        finally:
            await provider.aclose()
    unreachable_provider = build_provider(make_config(case, closed_port_url(case)))
    try:
        unreachable = await unreachable_provider.check_connection()
    finally:
        await unreachable_provider.aclose()
    assert not wrong_key.ok and "API key" in wrong_key.message
    assert API_KEY not in wrong_key.message
    assert not unreachable.ok and "Could not connect" in unreachable.message


# --- provider specifics ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_openai_compatible_retries_without_stream_options_when_the_server_rejects_them() -> None:
    case = REMOTE_CASES[1]
    behaviour = FakeBehaviour(tokens=["fine"], reject_stream_options=True)
    async with FakeOpenAIServer(behaviour).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            events = await collect(provider, make_request())
        finally:
            await provider.aclose()
        attempts = server.chat_requests()
    assert [event for event in events if isinstance(event, TokenDelta)] == [TokenDelta("fine")]
    # Without stream_options the server sends no usage, and the provider invents none.
    assert not any(isinstance(event, Usage) for event in events)
    assert len(attempts) == 2
    assert "stream_options" in attempts[0].body and "stream_options" not in attempts[1].body


@contextlib.asynccontextmanager
async def closing_first_connections(target_port: int, count: int) -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP front that closes its first `count` connections as soon as they arrive (as a
    server closing an idle keep-alive connection, or an overloaded one resetting), and
    relays the later ones to `target_port`. Yields its port and how many it closed."""
    closed = [0]

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if closed[0] < count:
            closed[0] += 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], closed
    finally:
        server.close()


@pytest.mark.asyncio
async def test_openai_compatible_sends_again_when_the_connection_closes_before_any_response() -> None:
    case = REMOTE_CASES[1]
    async with FakeOpenAIServer(FakeBehaviour(tokens=["still", " here"])).serve() as server:
        port = int(server.base_url.split(":")[2].split("/")[0])
        async with closing_first_connections(port, 2) as (front_port, closed):
            provider = build_provider(make_config(case, f"http://127.0.0.1:{front_port}/v1"))
            try:
                events = await collect(provider, make_request())
            finally:
                await provider.aclose()
        assert closed[0] == 2
        assert len(server.chat_requests()) == 1
    assert [event.text for event in events if isinstance(event, TokenDelta)] == ["still", " here"]


@pytest.mark.asyncio
async def test_openai_compatible_gives_up_after_two_resends() -> None:
    case = REMOTE_CASES[1]
    async with FakeOpenAIServer().serve() as server:
        port = int(server.base_url.split(":")[2].split("/")[0])
        async with closing_first_connections(port, 3) as (front_port, closed):
            provider = build_provider(make_config(case, f"http://127.0.0.1:{front_port}/v1"))
            try:
                _, error = await collect_until_failure(provider, make_request())
            finally:
                await provider.aclose()
        assert closed[0] == 3
        assert not server.chat_requests()
    assert error.kind is ErrorKind.CONNECTION


@pytest.mark.asyncio
async def test_openai_compatible_sends_a_placeholder_key_when_none_is_configured() -> None:
    case = REMOTE_CASES[1]
    async with FakeOpenAIServer().serve() as server:
        provider = build_provider(make_config(case, server.base_url, api_key=None))
        try:
            events = await collect(provider, make_request())
        finally:
            await provider.aclose()
    assert any(isinstance(event, TokenDelta) for event in events)


@pytest.mark.asyncio
async def test_anthropic_without_a_key_fails_clearly_without_calling_anyone() -> None:
    case = REMOTE_CASES[2]
    async with FakeAnthropicServer().serve() as server:
        provider = build_provider(make_config(case, server.base_url, api_key=None))
        try:
            _, error = await collect_until_failure(provider, make_request())
            check = await provider.check_connection()
        finally:
            await provider.aclose()
        assert server.requests == []
    assert error.kind is ErrorKind.AUTHENTICATION
    assert "none is set" in error.user_message
    assert not check.ok


@pytest.mark.asyncio
async def test_anthropic_error_event_types_map_to_error_kinds() -> None:
    case = REMOTE_CASES[2]
    behaviour = FakeBehaviour(
        tokens=["a", "b"], fail_after_tokens=1, failure_mode=FailureMode.ERROR_EVENT, error_type="api_error"
    )
    async with FakeAnthropicServer(behaviour).serve() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            _, error = await collect_until_failure(provider, make_request())
        finally:
            await provider.aclose()
    assert error.kind is ErrorKind.PROVIDER_ERROR
    assert "HTTP 200" not in error.user_message


@pytest.mark.asyncio
async def test_ollama_accepts_an_untagged_model_name_listed_with_latest() -> None:
    case = REMOTE_CASES[0]
    async with FakeOllamaServer(FakeBehaviour(known_models={"llama3.2"})).serve() as server:
        provider = build_provider(make_config(case, server.base_url, model_name="llama3.2"))
        try:
            check = await provider.check_connection()
        finally:
            await provider.aclose()
    assert check.ok, check.message


@pytest.mark.asyncio
async def test_fake_server_in_a_thread_serves_a_provider_on_another_loop() -> None:
    case = REMOTE_CASES[1]
    with FakeOpenAIServer(FakeBehaviour(tokens=["from", " a", " thread"])).serve_in_thread() as server:
        provider = build_provider(make_config(case, server.base_url))
        try:
            events = await collect(provider, make_request())
        finally:
            await provider.aclose()
    assert "".join(event.text for event in events if isinstance(event, TokenDelta)) == "from a thread"


# --- the extractive answerer --------------------------------------------------------------


@pytest.mark.asyncio
async def test_extractive_answer_quotes_relevant_sentences_and_cites_only_used_passages() -> None:
    passages = [
        *PASSAGES,
        ContextPassage(3, "Unrelated", "The office is closed on public holidays.", "p. 1", 0.2),
    ]
    request = build_generation_request(
        None, passages, [], "How long does the battery take to charge?", 4096, 256
    )
    provider = ExtractiveProvider()
    events = await collect(provider, request)
    deltas = [event for event in events if isinstance(event, TokenDelta)]
    answer = "".join(delta.text for delta in deltas)

    assert len(deltas) > 5
    assert answer == compose_extractive_answer(request.question, request.passages)
    assert answer.startswith("Based on the documents:")
    assert "> The battery charges fully in 90 minutes." in answer
    _, cited = extract_citations(answer, {1, 2, 3})
    # Passage 2 mentions the battery too, but far less to the point than passage 1.
    assert cited == [1]
    assert "holidays" not in answer and "warranty" not in answer


@pytest.mark.asyncio
async def test_extractive_answer_without_passages_says_so() -> None:
    request = build_generation_request(None, [], [], "What is the meaning of life?", 4096, 256)
    events = await collect(ExtractiveProvider(), request)
    answer = "".join(event.text for event in events if isinstance(event, TokenDelta))
    assert answer == NO_PASSAGES_ANSWER
    assert (await ExtractiveProvider().check_connection()).ok


def test_extractive_answer_is_deterministic_and_falls_back_to_the_top_passage() -> None:
    question = "xylophone quartet?"
    first = compose_extractive_answer(question, PASSAGES)
    assert first == compose_extractive_answer(question, PASSAGES)
    assert "[1]" in first and "[2]" not in first


def test_build_provider_returns_the_extractive_answerer_without_settings() -> None:
    config = ProviderConfig(ProviderKind.EXTRACTIVE, None, None, None, 0.0, 1)
    assert isinstance(build_provider(config), ExtractiveProvider)


def test_provider_config_repr_hides_the_key() -> None:
    config = ProviderConfig(ProviderKind.OPENAI_COMPATIBLE, "m", "http://x/v1", API_KEY, 0.0, 1)
    assert API_KEY not in repr(config)
    assert API_KEY not in str(config)


# --- validation --------------------------------------------------------------------------


def test_valid_settings_have_no_problems() -> None:
    assert validate_provider_config(ProviderKind.OLLAMA, "llama3.2", None, 0.2, 1024) == []
    assert validate_provider_config(ProviderKind.OLLAMA, "llama3.2", "http://gpu:11434", 0, 1) == []
    assert (
        validate_provider_config(ProviderKind.OPENAI_COMPATIBLE, "m", "https://api.example.com/v1", 2, 32768)
        == []
    )
    assert validate_provider_config(ProviderKind.ANTHROPIC, "claude-x", "", 1.0, 4096, has_api_key=True) == []
    assert validate_provider_config(ProviderKind.EXTRACTIVE, None, None, 99, 0) == []
    assert effective_base_url(ProviderKind.OLLAMA, " ") == "http://localhost:11434"
    assert effective_base_url(ProviderKind.ANTHROPIC, None) == "https://api.anthropic.com"


@pytest.mark.parametrize(
    ("kind", "model_name", "base_url", "temperature", "max_output_tokens", "expected_fragment"),
    [
        (ProviderKind.OLLAMA, None, None, 0.2, 100, "model name is required"),
        (ProviderKind.OPENAI_COMPATIBLE, "  ", "http://x/v1", 0.2, 100, "model name is required"),
        (ProviderKind.OPENAI_COMPATIBLE, "m", None, 0.2, 100, "base URL is required"),
        (ProviderKind.OPENAI_COMPATIBLE, "m", "ftp://x/v1", 0.2, 100, "http:// or https://"),
        (ProviderKind.OPENAI_COMPATIBLE, "m", "localhost:8000", 0.2, 100, "http:// or https://"),
        (ProviderKind.OPENAI_COMPATIBLE, "m", "http://", 0.2, 100, "host name"),
        (ProviderKind.OPENAI_COMPATIBLE, "m", "http://x:99999/v1", 0.2, 100, "not a valid URL"),
        (ProviderKind.OPENAI_COMPATIBLE, "m", "http://user:pw@x/v1", 0.2, 100, "credentials"),
        (ProviderKind.OPENAI_COMPATIBLE, "m", "http://x /v1", 0.2, 100, "spaces"),
        (ProviderKind.OLLAMA, "m", "http://x:11434/v1", 0.2, 100, "without /v1"),
        (ProviderKind.ANTHROPIC, "m", "https://api.anthropic.com/v1", 0.2, 100, "leave /v1 out"),
        (ProviderKind.OLLAMA, "m", None, -0.1, 100, "Temperature"),
        (ProviderKind.OLLAMA, "m", None, 2.5, 100, "Temperature"),
        (ProviderKind.OLLAMA, "m", None, float("nan"), 100, "Temperature"),
        (ProviderKind.OLLAMA, "m", None, 0.2, 0, "Max output tokens"),
        (ProviderKind.OLLAMA, "m", None, 0.2, 32769, "Max output tokens"),
    ],
)
def test_invalid_settings_are_explained(
    kind: ProviderKind,
    model_name: str | None,
    base_url: str | None,
    temperature: float,
    max_output_tokens: int,
    expected_fragment: str,
) -> None:
    problems = validate_provider_config(kind, model_name, base_url, temperature, max_output_tokens)
    assert any(expected_fragment in problem for problem in problems), problems


def test_anthropic_without_a_key_is_a_problem_when_known() -> None:
    problems = validate_provider_config(ProviderKind.ANTHROPIC, "claude-x", None, 0.2, 100, has_api_key=False)
    assert problems == ["Anthropic needs an API key."]
