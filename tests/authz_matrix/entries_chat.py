"""Matrix entries for chat (issue 5): sessions and messages are private to their owner —
administrators included — and look exactly like missing ones to everybody else."""

from __future__ import annotations

import uuid
from typing import Any

from gql_server.db.base import utcnow
from gql_server.db.models import ChatMessage, ChatSession, MessageRole, MessageStatus, RagModel
from tests.authz_matrix import MatrixEntry, Outcome, World, expect, world_object
from tests.factories import create_chat, create_model, grant_model

Out = Outcome
OWNER_ONLY = expect.per_actor(
    anonymous=Out.UNAUTHENTICATED,
    user=Out.HIDDEN,
    member=Out.ALLOWED,
    admin=Out.HIDDEN,
    superadmin=Out.HIDDEN,
    chat_token=Out.HIDDEN,  # an administrator's token: another user's chat does not exist
)
MODEL_USERS = expect.per_actor(
    anonymous=Out.UNAUTHENTICATED,
    user=Out.HIDDEN,
    member=Out.ALLOWED,
    admin=Out.ALLOWED,
    superadmin=Out.ALLOWED,
    chat_token=Out.ALLOWED,
)


async def _answered_session(world: World, *, active: bool) -> tuple[ChatSession, ChatMessage]:
    """A chat of `member` on "model" holding one question and its finished answer."""
    return await create_chat(
        world.sessionmaker,
        world.users["member"],
        await world.get("model"),
        title="matrix chat",
        active=active,
        question="What is in the documents?",
        answer="Nothing yet.",
        answer_status=MessageStatus.COMPLETE,
    )


@world_object("chat_model")
async def _chat_model(world: World) -> RagModel:
    """A second model `member` may use, so starting chats does not end "chat_session"."""
    model = await create_model(world.sessionmaker, f"matrix chat model {uuid.uuid4().hex[:6]}")
    await grant_model(world.sessionmaker, model, group=await world.get("member_group"))
    return model


@world_object("chat_message")
async def _chat_message(world: World) -> ChatMessage:
    """A finished answer in `member`'s active "chat_session"."""
    chat = await world.get("chat_session")
    now = utcnow()
    async with world.sessionmaker.begin() as session:
        answer = ChatMessage(
            session_id=chat.id,
            user_id=chat.user_id,
            role=MessageRole.ASSISTANT,
            content="An answer [1].",
            status=MessageStatus.COMPLETE,
            sources=[],
            created_at=now,
            completed_at=now,
        )
        session.add(answer)
    return answer


@world_object("ended_chat_session")
async def _ended_chat_session(world: World) -> ChatSession:
    chat, _ = await _answered_session(world, active=False)
    return chat


@world_object("ended_chat_answer")
async def _ended_chat_answer(world: World) -> ChatMessage:
    _, answer = await _answered_session(world, active=False)
    return answer


def _ids(**names: str) -> Any:
    async def build(world: World, actor: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, spec in names.items():
            fresh = spec.startswith("fresh:")
            values[key] = await world.id_of(spec.removeprefix("fresh:"), fresh=fresh)
        return values

    return build


def _with(builder: Any, **extra: Any) -> Any:
    async def build(world: World, actor: str) -> dict[str, Any]:
        return {**(await builder(world, actor)), **extra}

    return build


async def _only_owner_lists_the_chat(value: Any, world: World, actor: str) -> None:
    chat = await world.get("chat_session")
    ids = {item["id"] for item in value["items"]}
    assert (str(chat.id) in ids) == (actor == "member"), ids


ENTRIES = [
    MatrixEntry(
        field="chatSessions",
        kind="query",
        document="query { chatSessions { totalCount items { id } } }",
        expect=expect.signed_in(),
        check=_only_owner_lists_the_chat,
    ),
    MatrixEntry(
        field="chatSession",
        kind="query",
        document="query($id: UUID!) { chatSession(id: $id) { __typename } }",
        variables=_ids(id="chat_session"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="messages",
        kind="query",
        document="query($id: UUID!) { messages(sessionId: $id) { __typename } }",
        variables=_ids(id="chat_session"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="chatMessage",
        kind="query",
        document="query($id: UUID!) { chatMessage(id: $id) { __typename } }",
        variables=_ids(id="chat_message"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="startChatSession",
        kind="mutation",
        document="mutation($m: UUID!) { startChatSession(modelId: $m) { __typename } }",
        variables=_ids(m="chat_model"),
        expect=MODEL_USERS,
    ),
    MatrixEntry(
        field="renameChatSession",
        kind="mutation",
        document='mutation($id: UUID!) { renameChatSession(id: $id, title: "Renamed") { __typename } }',
        variables=_ids(id="chat_session"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="resumeChatSession",
        kind="mutation",
        document="mutation($id: UUID!) { resumeChatSession(id: $id) { __typename } }",
        variables=_ids(id="fresh:ended_chat_session"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="deleteChatSession",
        kind="mutation",
        document="mutation($id: UUID!) { deleteChatSession(id: $id) { __typename } }",
        variables=_ids(id="fresh:ended_chat_session"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="sendMessage",
        kind="mutation",
        document='mutation($id: UUID!) { sendMessage(sessionId: $id, content: "Hello?") { __typename } }',
        variables=_ids(id="chat_session"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="regenerateMessage",
        kind="mutation",
        document="mutation($id: UUID!) { regenerateMessage(messageId: $id) { __typename } }",
        variables=_ids(id="fresh:ended_chat_answer"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="setMessageFeedback",
        kind="mutation",
        document="mutation($id: UUID!) { setMessageFeedback(messageId: $id, value: UP) { __typename } }",
        variables=_ids(id="chat_message"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="stopGeneration",
        kind="mutation",
        document="mutation($id: UUID!) { stopGeneration(messageId: $id) { __typename } }",
        variables=_ids(id="chat_message"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="attachFile",
        kind="mutation",
        # Not a multipart request: the owner gets past authorization to a typed InvalidInput.
        document="mutation($id: UUID!, $file: Upload!) { attachFile(sessionId: $id, file: $file) { __typename } }",
        variables=_with(_ids(id="chat_session"), file="not-a-multipart-file"),
        expect=OWNER_ONLY,
    ),
    MatrixEntry(
        field="messageStream",
        kind="subscription",
        document="subscription($id: UUID!) { messageStream(messageId: $id) { __typename } }",
        variables=_ids(id="chat_message"),
        expect=OWNER_ONLY,
    ),
]
