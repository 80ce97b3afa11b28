"""Chat sessions and messages through the real API: ownership, validation, history, limits."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from gql_server.db.models import ChatMessage, Document, DocumentKind, PendingFileDeletion, Role
from tests.chat_support import (
    SEND,
    STREAM,
    active_session_count,
    chat_world,
    collect,
    send,
    send_ok,
    start_session,
    stored_message,
    stream_all,
)
from tests.conftest import RunningServer
from tests.factories import client_for, create_user

pytestmark = pytest.mark.asyncio

SESSIONS = """
query Sessions($modelId: UUID, $includeEnded: Boolean! = true, $first: Int! = 20, $offset: Int! = 0) {
  chatSessions(modelId: $modelId, includeEnded: $includeEnded, first: $first, offset: $offset) {
    totalCount hasNextPage items { id title isActive endedAt modelId }
  }
}
"""
SESSION = """
query Session($id: UUID!) {
  chatSession(id: $id) { __typename ... on ChatSession { id title } ... on NotFound { message } }
}
"""
MESSAGES = """
query Messages($sessionId: UUID!, $first: Int! = 50, $before: UUID, $offset: Int! = 0) {
  messages(sessionId: $sessionId, first: $first, before: $before, offset: $offset) {
    __typename
    ... on ChatMessagePage { hasNextPage items { id role content status } }
    ... on NotFound { message }
  }
}
"""
RENAME = """
mutation Rename($id: UUID!, $title: String!) {
  renameChatSession(id: $id, title: $title) {
    __typename ... on ChatSession { id title } ... on Error { message }
  }
}
"""
DELETE = """
mutation Delete($id: UUID!) {
  deleteChatSession(id: $id) { __typename ... on ChatSessionDeleted { id } ... on NotFound { message } }
}
"""
FEEDBACK = """
mutation Feedback($id: UUID!, $value: FeedbackValue!) {
  setMessageFeedback(messageId: $id, value: $value) {
    __typename ... on ChatMessage { id feedback } ... on Error { message }
  }
}
"""
REGENERATE = """
mutation Regenerate($id: UUID!) {
  regenerateMessage(messageId: $id) {
    __typename ... on MessageSent { messageId } ... on Error { message }
  }
}
"""


async def test_one_active_session_per_model_and_history(server: RunningServer) -> None:
    world = await chat_world(server)
    first = await start_session(world.client, world.model.id, "First")
    second = await start_session(world.client, world.model.id, "Second")
    page = (await world.client.execute(SESSIONS, {"modelId": str(world.model.id)}))["chatSessions"]
    assert page["totalCount"] == 2
    by_id = {item["id"]: item for item in page["items"]}
    assert by_id[first]["isActive"] is False and by_id[first]["endedAt"] is not None
    assert by_id[second]["isActive"] is True
    active = (await world.client.execute(SESSIONS, {"includeEnded": False}))["chatSessions"]
    assert [item["id"] for item in active["items"]] == [second]
    paged = (await world.client.execute(SESSIONS, {"first": 1, "offset": 0}))["chatSessions"]
    assert len(paged["items"]) == 1 and paged["hasNextPage"] is True
    # The ended session keeps its history; sending in it continues it (tests/test_chat_resume.py).
    result = await send(world.client, first, "hello")
    assert result["__typename"] == "MessageSent"


async def test_concurrent_starts_leave_exactly_one_active(server: RunningServer) -> None:
    world = await chat_world(server)
    await asyncio.gather(*(start_session(world.client, world.model.id) for _ in range(8)))
    active = await active_session_count(server, world.user)
    assert active == 1


async def test_foreign_and_unknown_ids_are_not_found(server: RunningServer) -> None:
    owner = await chat_world(server)
    session_id = await start_session(owner.client, owner.model.id, "Private")
    message_id = await send_ok(owner.client, session_id, "What is in the documents?")
    await stream_all(owner.client, message_id)
    other = await chat_world(server, model=owner.model)
    admin_user = await create_user(server.state.sessionmaker, role=Role.ADMIN)
    admin = client_for(server.client, server.state.tokens, admin_user)
    unknown_session, unknown_message = str(uuid.uuid4()), str(uuid.uuid4())
    for client in (other.client, admin):
        for target in (session_id, unknown_session):
            assert (await client.execute(SESSION, {"id": target}))["chatSession"]["__typename"] == "NotFound"
            messages = (await client.execute(MESSAGES, {"sessionId": target}))["messages"]
            assert messages == {"__typename": "NotFound", "message": "Chat session not found."}
            renamed = (await client.execute(RENAME, {"id": target, "title": "x"}))["renameChatSession"]
            assert renamed["__typename"] == "NotFound"
            assert (await send(client, target, "hi"))["__typename"] == "NotFound"
            assert (await client.execute(DELETE, {"id": target}))["deleteChatSession"][
                "__typename"
            ] == "NotFound"
        for target in (message_id, unknown_message):
            assert (await stored_message(client, target))["__typename"] == "NotFound"
            events = await stream_all(client, target)
            assert events == [{"__typename": "NotFound", "message": "Message not found."}]
            feedback = (await client.execute(FEEDBACK, {"id": target, "value": "UP"}))["setMessageFeedback"]
            assert feedback["__typename"] == "NotFound"
            regenerated = (await client.execute(REGENERATE, {"id": target}))["regenerateMessage"]
            assert regenerated["__typename"] == "NotFound"
        assert (await client.execute(SESSIONS))["chatSessions"]["totalCount"] == 0
    # A user without access to the model cannot start a chat with it.
    outsider = client_for(server.client, server.state.tokens, await create_user(server.state.sessionmaker))
    start = await outsider.execute(
        "mutation($m: UUID!) { startChatSession(modelId: $m) { __typename } }", {"m": str(owner.model.id)}
    )
    assert start["startChatSession"]["__typename"] == "NotFound"


async def test_anonymous_callers_are_refused(server: RunningServer) -> None:
    body = await server.client.raw(SESSIONS)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_empty_and_oversized_messages_are_invalid(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    for content in ("", "   \n\t "):
        result = await send(world.client, session_id, content)
        assert result["__typename"] == "InvalidInput"
        assert "empty" in result["message"]
    result = await send(world.client, session_id, "x" * (100 * 1024))
    assert result["__typename"] == "InvalidInput"
    assert result["fieldErrors"] == [{"field": "content", "message": result["message"]}]
    assert "32 KB" in result["message"]
    # Exactly at the limit is fine.
    assert (await send(world.client, session_id, "y" * (32 * 1024)))["__typename"] == "MessageSent"
    async with server.state.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(ChatMessage))
    assert count == 2


async def test_messages_pagination_rename_feedback_regenerate(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    answers = []
    for index in range(3):
        answer = await send_ok(world.client, session_id, f"Question number {index}")
        await stream_all(world.client, answer)
        answers.append(answer)
    page = (await world.client.execute(MESSAGES, {"sessionId": session_id, "first": 4}))["messages"]
    assert page["hasNextPage"] is True
    assert [item["role"] for item in page["items"]] == ["USER", "ASSISTANT", "USER", "ASSISTANT"]
    assert page["items"][0]["content"] == "Question number 1"
    older = (
        await world.client.execute(
            MESSAGES, {"sessionId": session_id, "first": 4, "before": page["items"][0]["id"]}
        )
    )["messages"]
    assert older["items"][0]["content"] == "Question number 0"
    assert older["hasNextPage"] is False

    renamed = (await world.client.execute(RENAME, {"id": session_id, "title": "  Renamed  "}))[
        "renameChatSession"
    ]
    assert renamed == {"__typename": "ChatSession", "id": session_id, "title": "Renamed"}
    empty = (await world.client.execute(RENAME, {"id": session_id, "title": " "}))["renameChatSession"]
    assert empty["__typename"] == "InvalidInput"

    for value in ("UP", "DOWN", "NONE"):
        result = (await world.client.execute(FEEDBACK, {"id": answers[-1], "value": value}))[
            "setMessageFeedback"
        ]
        assert result == {"__typename": "ChatMessage", "id": answers[-1], "feedback": value}
    question_id = page["items"][-2]["id"]
    on_question = (await world.client.execute(FEEDBACK, {"id": question_id, "value": "UP"}))[
        "setMessageFeedback"
    ]
    assert on_question["__typename"] == "InvalidInput"

    # Only the last answer can be regenerated; it is replaced by a new message.
    refused = (await world.client.execute(REGENERATE, {"id": answers[0]}))["regenerateMessage"]
    assert refused["__typename"] == "InvalidInput"
    regenerated = (await world.client.execute(REGENERATE, {"id": answers[-1]}))["regenerateMessage"]
    assert regenerated["__typename"] == "MessageSent"
    new_id = regenerated["messageId"]
    assert new_id != answers[-1]
    events = await stream_all(world.client, new_id)
    assert events[-1]["__typename"] == "DoneEvent"
    assert (await stored_message(world.client, answers[-1]))["__typename"] == "NotFound"
    latest = (await world.client.execute(MESSAGES, {"sessionId": session_id, "first": 2}))["messages"][
        "items"
    ]
    assert [item["id"] for item in latest][-1] == new_id
    assert latest[0]["content"] == "Question number 2"


async def test_delete_session_removes_messages_attachments_and_files(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    answer = await send_ok(world.client, session_id, "Anything?")
    await stream_all(world.client, answer)
    stored = server.settings.files_dir / "documents" / "attached.txt"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text("attached text")
    async with server.state.sessionmaker.begin() as session:
        session.add(
            Document(
                model_id=world.model.id,
                session_id=uuid.UUID(session_id),
                filename="attached.txt",
                title="attached",
                kind=DocumentKind.TEXT,
                size_bytes=13,
                sha256="0" * 64,
                storage_path="documents/attached.txt",
                file_kept=True,
            )
        )
    deleted = (await world.client.execute(DELETE, {"id": session_id}))["deleteChatSession"]
    assert deleted == {"__typename": "ChatSessionDeleted", "id": session_id}
    async with server.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ChatMessage)) == 0
        assert await session.scalar(select(func.count()).select_from(Document)) == 0
        assert await session.scalar(select(func.count()).select_from(PendingFileDeletion)) == 0
    assert not stored.exists()
    assert (await world.client.execute(SESSION, {"id": session_id}))["chatSession"][
        "__typename"
    ] == "NotFound"


async def test_legacy_graphql_ws_protocol_streams_messages(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    message_id = await send_ok(world.client, session_id, "What do the documents say?")
    async with world.client.subscription_connection(protocol="graphql-ws") as socket:
        events = await collect(socket, message_id)
    assert events[0]["__typename"] == "SourcesEvent"
    assert events[-1]["__typename"] == "DoneEvent"
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))


async def test_mutation_over_websocket(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    async with world.client.subscription_connection() as socket:
        operation = await socket.subscribe(SEND, {"sessionId": session_id, "content": "hello there"})
        results = [payload async for payload in socket.results(operation)]
        message_id = results[0]["data"]["sendMessage"]["messageId"]
        operation = await socket.subscribe(STREAM, {"messageId": message_id})
        events = [payload["data"]["messageStream"] async for payload in socket.results(operation)]
    assert events[-1]["__typename"] == "DoneEvent"
