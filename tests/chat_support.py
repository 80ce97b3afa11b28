"""Shared arrangements for the chat tests: a user with a model, the fake server of each remote
provider kind, and GraphQL documents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from gql_server.db.models import ChatSession, ProviderKind, RagModel, User
from tests.conftest import RunningServer
from tests.factories import client_for, create_model, create_user, grant_model
from tests.fake_llm_servers import FakeAnthropicServer, FakeLLMServer, FakeOllamaServer, FakeOpenAIServer
from tests.graphql_client import GraphQLClient, WebSocketSession

FAKES: dict[ProviderKind, type[FakeLLMServer]] = {
    ProviderKind.OLLAMA: FakeOllamaServer,
    ProviderKind.OPENAI_COMPATIBLE: FakeOpenAIServer,
    ProviderKind.ANTHROPIC: FakeAnthropicServer,
}

START = """
mutation Start($modelId: UUID!, $title: String) {
  startChatSession(modelId: $modelId, title: $title) {
    __typename
    ... on ChatSession { id modelId title isActive endedAt }
    ... on Error { message }
  }
}
"""

SEND = """
mutation Send($sessionId: UUID!, $content: String!) {
  sendMessage(sessionId: $sessionId, content: $content) {
    __typename
    ... on MessageSent { messageId userMessage { id role content } assistantMessage { id status } }
    ... on GenerationInProgress { message messageId }
    ... on InvalidInput { message fieldErrors { field message } }
    ... on Error { message }
  }
}
"""

STREAM = """
subscription Stream($messageId: UUID!, $afterSeq: Int! = 0) {
  messageStream(messageId: $messageId, afterSeq: $afterSeq) {
    __typename
    ... on MessageEvent { seq messageId }
    ... on SourcesEvent { sources { number documentId documentTitle pageStart pageEnd rowStart rowEnd
                                    locationLabel snippet score url cited } }
    ... on TokenEvent { delta }
    ... on DoneEvent { status text citations usage { promptTokens completionTokens }
                       timings { retrievalMs timeToFirstTokenMs totalMs } }
    ... on ErrorEvent { status message text }
    ... on NotFound { message }
  }
}
"""

MESSAGE = """
query Message($id: UUID!) {
  chatMessage(id: $id) {
    __typename
    ... on ChatMessage { id role content status error citations feedback
                         sources { number documentId cited url }
                         tokenUsage { promptTokens completionTokens }
                         timings { retrievalMs timeToFirstTokenMs totalMs } }
    ... on NotFound { message }
  }
}
"""

STOP = """
mutation Stop($messageId: UUID!) {
  stopGeneration(messageId: $messageId) {
    __typename
    ... on StopRequested { messageId alreadyFinished }
    ... on NotFound { message }
  }
}
"""


@dataclass
class ChatWorld:
    user: User
    model: RagModel
    client: GraphQLClient


async def chat_world(
    server: RunningServer,
    *,
    provider: ProviderKind = ProviderKind.EXTRACTIVE,
    base_url: str | None = None,
    llm_model_name: str | None = None,
    api_key: str | None = None,
    model: RagModel | None = None,
) -> ChatWorld:
    sessionmaker = server.state.sessionmaker
    user = await create_user(sessionmaker)
    if model is None:
        model = await create_model(
            sessionmaker,
            provider=provider,
            base_url=base_url,
            llm_model_name=llm_model_name,
            api_key_encrypted=server.state.cipher.encrypt(api_key) if api_key else None,
        )
    await grant_model(sessionmaker, model, user=user)
    return ChatWorld(user, model, client_for(server.client, server.state.tokens, user))


async def active_session_count(server: RunningServer, user: User) -> int:
    """How many chat sessions of `user` the database holds as active."""
    async with server.state.sessionmaker() as session:
        return await session.scalar(
            select(func.count())
            .select_from(ChatSession)
            .where(ChatSession.user_id == user.id, ChatSession.is_active)
        )


async def start_session(client: GraphQLClient, model_id: uuid.UUID | str, title: str | None = None) -> str:
    data = await client.execute(START, {"modelId": str(model_id), "title": title})
    assert data["startChatSession"]["__typename"] == "ChatSession", data
    return str(data["startChatSession"]["id"])


async def send(client: GraphQLClient, session_id: str, content: str) -> dict[str, Any]:
    return (await client.execute(SEND, {"sessionId": session_id, "content": content}))["sendMessage"]


async def send_ok(client: GraphQLClient, session_id: str, content: str) -> str:
    result = await send(client, session_id, content)
    assert result["__typename"] == "MessageSent", result
    return str(result["messageId"])


async def collect(
    socket: WebSocketSession, message_id: str, after_seq: int = 0, timeout: float = 30
) -> list[dict[str, Any]]:
    operation = await socket.subscribe(STREAM, {"messageId": message_id, "afterSeq": after_seq})
    events = []
    async for payload in socket.results(operation, timeout):
        assert not payload.get("errors"), payload
        events.append(payload["data"]["messageStream"])
    return events


async def stream_all(
    client: GraphQLClient, message_id: str, after_seq: int = 0, timeout: float = 30
) -> list[dict[str, Any]]:
    async with client.subscription_connection() as socket:
        return await collect(socket, message_id, after_seq, timeout)


async def stored_message(client: GraphQLClient, message_id: str) -> dict[str, Any]:
    return (await client.execute(MESSAGE, {"id": message_id}))["chatMessage"]


def tokens_text(events: list[dict[str, Any]]) -> str:
    return "".join(event["delta"] for event in events if event["__typename"] == "TokenEvent")
