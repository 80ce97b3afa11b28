"""Two API processes sharing PostgreSQL and Redis: a client continues on either one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from gql_server.db.models import ChatMessage, ChatSession, ProviderKind
from gql_server.settings import Settings
from tests.chat_support import (
    STOP,
    STREAM,
    send,
    send_ok,
    start_session,
    stored_message,
    stream_all,
    tokens_text,
)
from tests.conftest import start_server
from tests.factories import client_for, create_model, create_user, grant_model
from tests.fake_llm_servers import DEFAULT_MODEL_NAME, FakeBehaviour, FakeOpenAIServer
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

TOKENS = [f"piece{index} " for index in range(40)]


@pytest_asyncio.fixture
async def two_servers(
    settings: Settings, private_redis: str
) -> AsyncIterator[tuple[Any, Any, GraphQLClient, GraphQLClient]]:
    shared = settings.model_copy(update={"redis_url": private_redis})
    first = await start_server(shared)
    second = await start_server(shared)
    async with httpx.AsyncClient(timeout=60) as http:
        yield first[2], second[2], GraphQLClient(first[3], http), GraphQLClient(second[3], http)
    for server, task, _, _ in (first, second):
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def test_reconnect_to_another_process_and_stop_from_it(two_servers: Any) -> None:
    app_a, _, client_a, client_b = two_servers
    state = app_a.state.app_state
    fake = FakeOpenAIServer(FakeBehaviour(tokens=TOKENS, token_delay_s=0.03))
    async with fake.serve():
        user = await create_user(state.sessionmaker)
        model = await create_model(
            state.sessionmaker,
            provider=ProviderKind.OPENAI_COMPATIBLE,
            base_url=fake.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
        )
        await grant_model(state.sessionmaker, model, user=user)
        on_a = client_for(client_a, state.tokens, user)
        on_b = client_for(client_b, state.tokens, user)
        session_id = await start_session(on_a, model.id)
        # Sent to A, generated on A.
        message_id = await send_ok(on_a, session_id, "Long answer please")
        # The one-generation rule holds on B too (the database decides).
        assert (await send(on_b, session_id, "Another"))["__typename"] == "GenerationInProgress"
        received: list[dict[str, Any]] = []
        async with on_a.subscription_connection() as socket_a:
            operation = await socket_a.subscribe(STREAM, {"messageId": message_id})
            async for payload in socket_a.results(operation):
                received.append(payload["data"]["messageStream"])
                if len(received) == 5:
                    break
        # Continue on B where we left off.
        rest = await stream_all(on_b, message_id, after_seq=received[-1]["seq"])
        events = received + rest
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
        assert tokens_text(events) == "".join(TOKENS) == events[-1]["text"]

        # Stop, asked on B, of an answer generated on A.
        second = await send_ok(on_a, session_id, "Another long one")
        stopped_events: list[dict[str, Any]] = []
        async with on_b.subscription_connection() as socket_b:
            operation = await socket_b.subscribe(STREAM, {"messageId": second})
            async for payload in socket_b.results(operation):
                stopped_events.append(payload["data"]["messageStream"])
                if len(stopped_events) == 4:
                    result = (await on_b.execute(STOP, {"messageId": second}))["stopGeneration"]
                    assert result["__typename"] == "StopRequested"
        assert stopped_events[-1]["__typename"] == "DoneEvent"
        assert stopped_events[-1]["status"] == "STOPPED"
        stored = await stored_message(on_a, second)
        assert stored["status"] == "STOPPED" and stored["content"] == tokens_text(stopped_events)


RESUME = """
mutation Resume($id: UUID!) {
  resumeChatSession(id: $id) { __typename ... on ChatSession { id isActive } ... on Error { message } }
}
"""


async def test_resumes_and_sends_on_two_processes_leave_one_active_chat(two_servers: Any) -> None:
    """Issue 16: continuing an older chat on either process; concurrent resumes and sends on
    both leave exactly one active chat per user and model, with every history intact."""
    app_a, _, client_a, client_b = two_servers
    state = app_a.state.app_state
    user = await create_user(state.sessionmaker)
    model = await create_model(state.sessionmaker, provider=ProviderKind.EXTRACTIVE)
    await grant_model(state.sessionmaker, model, user=user)
    on_a = client_for(client_a, state.tokens, user)
    on_b = client_for(client_b, state.tokens, user)
    older = await start_session(on_a, model.id, "Older")
    first_answer = await send_ok(on_a, older, "What is in the documents?")
    await stream_all(on_b, first_answer)
    newer = await start_session(on_b, model.id, "Newer")

    async def active_ids() -> set[str]:
        async with state.sessionmaker() as session:
            rows = await session.scalars(
                select(ChatSession.id).where(ChatSession.user_id == user.id, ChatSession.is_active)
            )
            return {str(row) for row in rows}

    assert await active_ids() == {newer}
    # Sent on B into the chat A's start ended: it is continued.
    resumed = await send_ok(on_b, older, "Back to the older chat")
    await stream_all(on_a, resumed)
    assert await active_ids() == {older}
    resumed_on_a = (await on_a.execute(RESUME, {"id": newer}))["resumeChatSession"]
    assert resumed_on_a == {"__typename": "ChatSession", "id": newer, "isActive": True}
    assert await active_ids() == {newer}

    ids = [older, newer] + [await start_session(on_a, model.id, f"Chat {index}") for index in range(2)]
    for _ in range(3):
        outcomes = await asyncio.gather(
            *(client.execute(RESUME, {"id": session_id}) for session_id in ids for client in (on_a, on_b)),
            send(on_b, ids[0], "hello from B"),
            send(on_a, ids[1], "hello from A"),
        )
        assert await active_ids() in ({session_id} for session_id in ids), outcomes
        resumes, sends = outcomes[:-2], outcomes[-2:]
        assert all(item["resumeChatSession"]["__typename"] == "ChatSession" for item in resumes), resumes
        assert all(item["__typename"] in {"MessageSent", "GenerationInProgress"} for item in sends), sends
        for sent in sends:
            if sent["__typename"] == "MessageSent":
                await stream_all(on_a, sent["messageId"])
    async with state.sessionmaker() as session:
        counts = dict(
            (
                await session.execute(
                    select(ChatMessage.session_id, func.count())
                    .where(ChatMessage.session_id.in_([older, newer]))
                    .group_by(ChatMessage.session_id)
                )
            ).all()
        )
    # The first two exchanges of the older chat are still there (and whatever was sent since).
    assert counts[uuid.UUID(older)] >= 4
