"""Answer generation end to end: fake provider servers on real HTTP, real WebSocket clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select

from gql_server.chat.generation import GenerationManager
from gql_server.db.models import ChatMessage, MessageStatus, ProviderKind
from tests.chat_support import (
    FAKES,
    STOP,
    STREAM,
    chat_world,
    send,
    send_ok,
    start_session,
    stored_message,
    stream_all,
    tokens_text,
)
from tests.conftest import RunningServer
from tests.fake_llm_servers import (
    DEFAULT_MODEL_NAME,
    FailureMode,
    FakeAnthropicServer,
    FakeBehaviour,
    FakeLLMServer,
    FakeOllamaServer,
    FakeOpenAIServer,
)
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

TOKENS = [f"word{index} " for index in range(30)]


async def llm_world(
    server: RunningServer, kind: ProviderKind, fake: FakeLLMServer, api_key: str | None = "test-key"
) -> Any:
    return await chat_world(
        server, provider=kind, base_url=fake.base_url, llm_model_name=DEFAULT_MODEL_NAME, api_key=api_key
    )


async def wait_for_status(server: RunningServer, message_id: str, timeout: float = 20) -> ChatMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with server.state.sessionmaker() as session:
            row = await session.scalar(select(ChatMessage).where(ChatMessage.id == message_id))
        if row is not None and row.status not in (MessageStatus.PENDING, MessageStatus.STREAMING):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("the answer did not finish")


def assert_contiguous(events: list[dict[str, Any]], first_seq: int = 1) -> None:
    assert [event["seq"] for event in events] == list(range(first_seq, first_seq + len(events)))


@pytest.mark.parametrize("kind", list(FAKES), ids=lambda kind: kind.value)
async def test_tokens_arrive_in_order_from_each_provider(server: RunningServer, kind: ProviderKind) -> None:
    fake = FAKES[kind](FakeBehaviour(tokens=TOKENS, token_delay_s=0.005))
    async with fake.serve():
        world = await llm_world(server, kind, fake)
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "Tell me everything")
        events = await stream_all(world.client, message_id)
    assert_contiguous(events)
    assert events[0]["__typename"] == "SourcesEvent" and events[0]["sources"] == []
    assert [event["delta"] for event in events[1:-1]] == TOKENS
    done = events[-1]
    assert done["__typename"] == "DoneEvent" and done["status"] == "COMPLETE"
    assert done["text"] == "".join(TOKENS)
    assert done["usage"]["completionTokens"] == len(TOKENS)
    assert done["timings"]["timeToFirstTokenMs"] > 0
    stored = await stored_message(world.client, message_id)
    assert stored["status"] == "COMPLETE" and stored["content"] == "".join(TOKENS)
    # The question reached the provider inside the prompt.
    assert "Tell me everything" in str(fake.chat_requests()[-1].body)


async def test_reconnect_with_after_seq_loses_and_duplicates_nothing(server: RunningServer) -> None:
    fake = FakeOpenAIServer(FakeBehaviour(tokens=TOKENS, token_delay_s=0.03))
    async with fake.serve():
        world = await llm_world(server, ProviderKind.OPENAI_COMPATIBLE, fake)
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "Stream slowly")
        received: list[dict[str, Any]] = []
        async with world.client.subscription_connection() as socket:
            operation = await socket.subscribe(STREAM, {"messageId": message_id})
            async for payload in socket.results(operation):
                received.append(payload["data"]["messageStream"])
                if len(received) == 6:
                    break
        # Disconnected; tokens keep coming meanwhile.
        await asyncio.sleep(0.2)
        rest = await stream_all(world.client, message_id, after_seq=received[-1]["seq"])
        # A second reconnect from the middle sees the same events again.
        again = await stream_all(world.client, message_id, after_seq=3)
    events = received + rest
    assert_contiguous(events)
    assert tokens_text(events) == "".join(TOKENS)
    assert events[-1]["text"] == "".join(TOKENS)
    assert again == events[3:]
    # Once finished, a late subscriber gets the full replay.
    assert await stream_all(world.client, message_id) == events


async def test_finished_answer_replays_from_the_row_when_the_log_expired(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    message_id = await send_ok(world.client, session_id, "Hello?")
    events = await stream_all(world.client, message_id)
    manager: GenerationManager = server.state.generation
    await manager.event_log.close()  # drops the in-process log, as its TTL would
    replay = await stream_all(world.client, message_id)
    assert [event["__typename"] for event in replay] == ["SourcesEvent", "DoneEvent"]
    assert replay[-1]["text"] == events[-1]["text"]
    assert replay[-1]["status"] == "COMPLETE"
    later = await stream_all(world.client, message_id, after_seq=5)
    assert [event["__typename"] for event in later] == ["DoneEvent"] and later[0]["seq"] == 6


async def test_stop_persists_stopped_with_partial_text(server: RunningServer) -> None:
    fake = FakeOllamaServer(FakeBehaviour(tokens=TOKENS * 5, token_delay_s=0.03))
    async with fake.serve():
        world = await llm_world(server, ProviderKind.OLLAMA, fake)
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "Go on")
        events: list[dict[str, Any]] = []
        async with world.client.subscription_connection() as socket:
            operation = await socket.subscribe(STREAM, {"messageId": message_id})
            async for payload in socket.results(operation):
                events.append(payload["data"]["messageStream"])
                if len(events) == 4:
                    stopped = (await world.client.execute(STOP, {"messageId": message_id}))["stopGeneration"]
                    assert stopped == {
                        "__typename": "StopRequested",
                        "messageId": message_id,
                        "alreadyFinished": False,
                    }
    done = events[-1]
    assert done["__typename"] == "DoneEvent" and done["status"] == "STOPPED"
    partial = tokens_text(events)
    assert done["text"] == partial and 0 < len(partial) < len("".join(TOKENS * 5))
    stored = await stored_message(world.client, message_id)
    assert stored["status"] == "STOPPED" and stored["content"] == partial
    again = (await world.client.execute(STOP, {"messageId": message_id}))["stopGeneration"]
    assert again["alreadyFinished"] is True


@pytest.mark.parametrize("kind", list(FAKES), ids=lambda kind: kind.value)
async def test_mid_stream_failure_keeps_the_partial_answer_as_failed(
    server: RunningServer, kind: ProviderKind
) -> None:
    fake = FAKES[kind](
        FakeBehaviour(tokens=TOKENS, fail_after_tokens=5, failure_mode=FailureMode.DROP_CONNECTION)
    )
    async with fake.serve():
        world = await llm_world(server, kind, fake)
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "Fail please")
        events = await stream_all(world.client, message_id)
    assert_contiguous(events)
    error = events[-1]
    assert error["__typename"] == "ErrorEvent" and error["status"] == "FAILED"
    assert error["message"]
    assert error["text"] == "".join(TOKENS[:5]) == tokens_text(events)
    stored = await stored_message(world.client, message_id)
    assert stored["status"] == "FAILED" and stored["content"] == "".join(TOKENS[:5])
    assert stored["error"] == error["message"]


async def test_hanging_provider_times_out_with_an_error(server: RunningServer) -> None:
    server.state.generation.request_timeout_s = 1.0
    fake = FakeOpenAIServer(FakeBehaviour(tokens=TOKENS, fail_after_tokens=2, failure_mode=FailureMode.HANG))
    async with fake.serve():
        world = await llm_world(server, ProviderKind.OPENAI_COMPATIBLE, fake)
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "Hang")
        started = time.monotonic()
        events = await stream_all(world.client, message_id, timeout=20)
        elapsed = time.monotonic() - started
    assert events[-1]["__typename"] == "ErrorEvent"
    assert "second" in events[-1]["message"]
    assert elapsed < 10
    stored = await stored_message(world.client, message_id)
    assert stored["status"] == "FAILED" and stored["content"] == "".join(TOKENS[:2])


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (FakeBehaviour(required_api_key="right-key"), "API key"),
        (FakeBehaviour(known_models={"other-model"}), DEFAULT_MODEL_NAME),
        (FakeBehaviour(rate_limited=True), "rate"),
    ],
    ids=["wrong-key", "unknown-model", "rate-limited"],
)
async def test_provider_errors_are_actionable(
    server: RunningServer, behaviour: FakeBehaviour, expected: str
) -> None:
    fake = FakeOpenAIServer(behaviour)
    async with fake.serve():
        world = await llm_world(server, ProviderKind.OPENAI_COMPATIBLE, fake, api_key="wrong-key")
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "Hi")
        events = await stream_all(world.client, message_id)
    assert events[-1]["__typename"] == "ErrorEvent"
    assert expected.lower() in events[-1]["message"].lower()
    assert "wrong-key" not in events[-1]["message"]


async def test_unreachable_provider_is_an_error_event(server: RunningServer) -> None:
    world = await chat_world(
        server, provider=ProviderKind.OPENAI_COMPATIBLE, base_url="http://127.0.0.1:9/v1", llm_model_name="m"
    )
    session_id = await start_session(world.client, world.model.id)
    message_id = await send_ok(world.client, session_id, "Hi")
    events = await stream_all(world.client, message_id)
    assert events[-1]["__typename"] == "ErrorEvent"
    assert "connect" in events[-1]["message"].lower()


async def test_client_disconnect_does_not_stop_the_answer(server: RunningServer) -> None:
    fake = FakeAnthropicServer(FakeBehaviour(tokens=TOKENS, token_delay_s=0.03))
    async with fake.serve():
        world = await llm_world(server, ProviderKind.ANTHROPIC, fake)
        session_id = await start_session(world.client, world.model.id)
        message_id = await send_ok(world.client, session_id, "Keep going")
        async with world.client.subscription_connection() as socket:
            operation = await socket.subscribe(STREAM, {"messageId": message_id})
            async for _ in socket.results(operation):
                break
        row = await wait_for_status(server, message_id)
    assert row.status is MessageStatus.COMPLETE
    assert row.content == "".join(TOKENS)


async def test_at_most_one_generation_per_user(server: RunningServer) -> None:
    fake = FakeOpenAIServer(FakeBehaviour(tokens=TOKENS, token_delay_s=0.03))
    async with fake.serve():
        world = await llm_world(server, ProviderKind.OPENAI_COMPATIBLE, fake)
        session_id = await start_session(world.client, world.model.id)
        first = await send_ok(world.client, session_id, "First")
        results = await asyncio.gather(*(send(world.client, session_id, f"Again {i}") for i in range(3)))
        assert {result["__typename"] for result in results} == {"GenerationInProgress"}
        assert {result["messageId"] for result in results} == {first}
        # Someone else is not blocked.
        other = await chat_world(server, model=world.model)
        other_session = await start_session(other.client, world.model.id)
        other_message = await send_ok(other.client, other_session, "Mine")
        await stream_all(world.client, first)
        await stream_all(other.client, other_message)
        second = await send_ok(world.client, session_id, "Now it works")
        assert (await stream_all(world.client, second))[-1]["__typename"] == "DoneEvent"


async def test_history_reaches_the_provider(server: RunningServer) -> None:
    fake = FakeOpenAIServer(FakeBehaviour(tokens=["Paris."]))
    async with fake.serve():
        world = await llm_world(server, ProviderKind.OPENAI_COMPATIBLE, fake)
        session_id = await start_session(world.client, world.model.id)
        await stream_all(world.client, await send_ok(world.client, session_id, "Capital of France?"))
        await stream_all(world.client, await send_ok(world.client, session_id, "And its population?"))
    messages = fake.chat_requests()[-1].body["messages"]
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Capital of France?" and messages[2]["content"] == "Paris."
    assert "And its population?" in messages[3]["content"]


async def _stop_unknown(client: GraphQLClient) -> None:
    result = (await client.execute(STOP, {"messageId": "00000000-0000-0000-0000-000000000000"}))[
        "stopGeneration"
    ]
    assert result["__typename"] == "NotFound"


async def test_stop_unknown_message_is_not_found(server: RunningServer) -> None:
    world = await chat_world(server)
    await _stop_unknown(world.client)
