"""Resuming an ended chat (issue 16): one active session per user and model, any chat can be continued.

Starting a chat ends the user's previous one with that model. Continuing an older chat —
explicitly with resumeChatSession, or by sending a message in it — makes it the active one
and ends the other, in one transaction, with both histories intact. The Redis variant (two
API processes) is in tests/test_chat_redis.py.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, func, select

from gql_server.db.models import ChatMessage, ChatSession, ModelAccessGrant
from tests.chat_support import active_session_count, chat_world, send, send_ok, start_session, stream_all
from tests.conftest import RunningServer
from tests.factories import client_for, create_user, grant_model
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

RESUME = """
mutation Resume($id: UUID!) {
  resumeChatSession(id: $id) {
    __typename
    ... on ChatSession { id isActive endedAt }
    ... on Error { message }
  }
}
"""
SESSIONS = """
query Sessions($modelId: UUID) {
  chatSessions(modelId: $modelId, first: 100) { items { id isActive endedAt } }
}
"""
REGENERATE = """
mutation Regenerate($id: UUID!) {
  regenerateMessage(messageId: $id) { __typename ... on MessageSent { messageId } ... on Error { message } }
}
"""


async def resume(client: GraphQLClient, session_id: str) -> dict[str, object]:
    result: dict[str, object] = (await client.execute(RESUME, {"id": session_id}))["resumeChatSession"]
    return result


async def activity(client: GraphQLClient, model_id: object) -> dict[str, bool]:
    page = (await client.execute(SESSIONS, {"modelId": str(model_id)}))["chatSessions"]
    return {item["id"]: item["isActive"] for item in page["items"]}


async def message_count(server: RunningServer, session_id: str) -> int:
    async with server.state.sessionmaker() as session:
        total = await session.scalar(
            select(func.count()).select_from(ChatMessage).where(ChatMessage.session_id == session_id)
        )
    return int(total or 0)


async def test_continuing_an_older_chat_makes_it_active_and_ends_the_newer(server: RunningServer) -> None:
    world = await chat_world(server)
    older = await start_session(world.client, world.model.id, "Older")
    await stream_all(world.client, await send_ok(world.client, older, "What is in the documents?"))
    newer = await start_session(world.client, world.model.id, "Newer")
    await stream_all(world.client, await send_ok(world.client, newer, "And now?"))
    assert await activity(world.client, world.model.id) == {older: False, newer: True}

    resumed = await resume(world.client, older)
    assert resumed == {"__typename": "ChatSession", "id": older, "isActive": True, "endedAt": None}
    assert await activity(world.client, world.model.id) == {older: True, newer: False}
    # Both histories are intact.
    assert await message_count(server, older) == 2 and await message_count(server, newer) == 2
    # Resuming the active chat changes nothing.
    assert (await resume(world.client, older))["isActive"] is True
    assert await activity(world.client, world.model.id) == {older: True, newer: False}
    # The continued chat takes questions again and regenerates its last answer.
    answer = await send_ok(world.client, older, "One more question")
    await stream_all(world.client, answer)
    regenerated = (await world.client.execute(REGENERATE, {"id": answer}))["regenerateMessage"]
    assert regenerated["__typename"] == "MessageSent", regenerated
    await stream_all(world.client, regenerated["messageId"])


async def test_sending_in_an_ended_chat_resumes_it(server: RunningServer) -> None:
    world = await chat_world(server)
    older = await start_session(world.client, world.model.id, "Older")
    newer = await start_session(world.client, world.model.id, "Newer")
    result = await send(world.client, older, "Back to the older chat")
    assert result["__typename"] == "MessageSent", result
    await stream_all(world.client, result["messageId"])
    assert await activity(world.client, world.model.id) == {older: True, newer: False}
    assert await message_count(server, older) == 2 and await message_count(server, newer) == 0


async def test_an_ended_chat_refuses_regenerate_until_continued(server: RunningServer) -> None:
    world = await chat_world(server)
    older = await start_session(world.client, world.model.id, "Older")
    answer = await send_ok(world.client, older, "What is in the documents?")
    await stream_all(world.client, answer)
    await start_session(world.client, world.model.id, "Newer")
    refused = (await world.client.execute(REGENERATE, {"id": answer}))["regenerateMessage"]
    assert refused["__typename"] == "InvalidInput"
    assert "Continue this chat" in refused["message"]
    assert await message_count(server, older) == 2


async def test_other_models_chats_stay_active(server: RunningServer) -> None:
    world = await chat_world(server)
    other = await chat_world(server)
    # The same user with a second model.
    await grant_model(server.state.sessionmaker, other.model, user=world.user)
    with_other = await start_session(world.client, other.model.id, "Other model")
    older = await start_session(world.client, world.model.id, "Older")
    await start_session(world.client, world.model.id, "Newer")
    assert (await resume(world.client, older))["isActive"] is True
    assert (await activity(world.client, other.model.id))[with_other] is True


async def test_concurrent_resumes_and_sends_leave_exactly_one_active(server: RunningServer) -> None:
    world = await chat_world(server)
    ids = [await start_session(world.client, world.model.id, f"Chat {index}") for index in range(4)]
    for _ in range(3):
        outcomes = await asyncio.gather(
            *(resume(world.client, session_id) for session_id in ids),
            *(send(world.client, session_id, "hello") for session_id in ids[:2]),
        )
        assert all(
            outcome["__typename"] in {"ChatSession", "MessageSent", "GenerationInProgress"}
            for outcome in outcomes
        ), outcomes
        active = await active_session_count(server, world.user)
        assert active == 1
        states = await activity(world.client, world.model.id)
        assert sorted(states.values()) == [False, False, False, True]
        for outcome in outcomes:
            if outcome["__typename"] == "MessageSent":
                await stream_all(world.client, str(outcome["messageId"]))


async def test_resume_refusals_are_typed(server: RunningServer) -> None:
    owner = await chat_world(server)
    older = await start_session(owner.client, owner.model.id, "Older")
    await start_session(owner.client, owner.model.id, "Newer")
    stranger = client_for(server.client, server.state.tokens, await create_user(server.state.sessionmaker))
    foreign = await resume(stranger, older)
    assert foreign == {"__typename": "NotFound", "message": "Chat session not found."}
    unknown = await resume(owner.client, "00000000-0000-0000-0000-000000000000")
    assert unknown["__typename"] == "NotFound"
    # Once the owner may no longer read the model, the chat is hidden: not found, nothing changes.
    async with server.state.sessionmaker.begin() as session:
        await session.execute(delete(ModelAccessGrant).where(ModelAccessGrant.model_id == owner.model.id))
    assert (await resume(owner.client, older))["__typename"] == "NotFound"
    assert (await send(owner.client, older, "hi"))["__typename"] == "NotFound"
    async with server.state.sessionmaker() as session:
        rows = (await session.execute(select(ChatSession.title, ChatSession.is_active))).all()
    assert {title: active for title, active in rows} == {"Older": False, "Newer": True}
    anonymous = await server.client.raw(RESUME, {"id": older})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
