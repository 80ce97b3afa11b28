"""The OpenAI-compatible API under /v1, driven by the official `openai` SDK against a real
server: models the token's user may use, completions (whole and streamed) over an
EXTRACTIVE model and over an OpenAI-compatible provider (the fake one), sources with the
[n] markers, storage of the exchange, and every refusal in OpenAI's error shape with
nothing stored."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from openai import AsyncOpenAI
from sqlalchemy import func, select, text

from gql_server.db.models import ChatMessage, ChatSession, MessageStatus, ProviderKind, RagModel, Role, User
from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import client_for, create_model, create_user, grant_model
from tests.fake_llm_servers import DEFAULT_MODEL_NAME, FakeBehaviour, FakeOpenAIServer
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio(loop_scope="session")

AURORA = (
    b"The aurora borealis is caused by charged solar particles striking the upper atmosphere. "
    b"Auroras are best seen near the magnetic poles during long winter nights.\n"
)
QUESTION = "Where are auroras best seen?"
CREATE_TOKEN = """
mutation($scopes: [AccessTokenScope!]!) { createAccessToken(name: "openai sdk", scopes: $scopes) {
  __typename ... on AccessTokenCreated { secret token { id } } } }
"""
REVOKE = "mutation($id: UUID!) { revokeAccessToken(id: $id) { __typename } }"
MARKER = re.compile(r"\[(\d+)\]")


@dataclass
class ApiWorld:
    server: RunningServer
    user: User
    model: RagModel
    session_client: GraphQLClient
    token: str
    token_id: str

    def sdk(self, api_key: str | None = None) -> AsyncOpenAI:
        return AsyncOpenAI(
            base_url=self.server.base_url + "/v1", api_key=api_key or self.token, max_retries=0
        )


async def ingest(admin: GraphQLClient, model_id: object, filename: str, content: bytes) -> None:
    document = await wait_for_final(admin, await upload_document(admin, str(model_id), filename, content))
    assert document["status"] == "READY", document


async def new_token(client: GraphQLClient, scopes: list[str]) -> tuple[str, str]:
    created = (await client.execute(CREATE_TOKEN, {"scopes": scopes}))["createAccessToken"]
    assert created["__typename"] == "AccessTokenCreated", created
    return created["secret"], created["token"]["id"]


async def api_world(server: RunningServer, superadmin: GraphQLClient, model: RagModel) -> ApiWorld:
    user = await create_user(server.state.sessionmaker)
    await grant_model(server.state.sessionmaker, model, user=user)
    client = client_for(server.client, server.state.tokens, user)
    token, token_id = await new_token(client, ["CHAT"])
    return ApiWorld(server, user, model, client, token, token_id)


@pytest_asyncio.fixture(loop_scope="session")
async def extractive(server: RunningServer, superadmin: GraphQLClient) -> ApiWorld:
    model = await create_model(server.state.sessionmaker)
    await ingest(superadmin, model.id, "aurora.txt", AURORA)
    return await api_world(server, superadmin, model)


@pytest_asyncio.fixture(loop_scope="session")
async def fake_provider() -> AsyncIterator[FakeOpenAIServer]:
    fake = FakeOpenAIServer(FakeBehaviour(tokens=["Charged solar", " particles cause it [1]", "."]))
    async with fake.serve():
        yield fake


async def message_count(server: RunningServer, user: User) -> int:
    async with server.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).where(ChatMessage.user_id == user.id)) or 0)


def assert_sources_match_markers(text: str, sources: list[dict[str, Any]], citations: list[int]) -> None:
    numbers = {source["number"] for source in sources}
    cited = [int(number) for number in MARKER.findall(text)]
    assert cited, text
    assert set(cited) <= numbers, (text, numbers)
    assert citations == list(dict.fromkeys(cited)), (citations, cited)
    assert {source["number"] for source in sources if source["cited"]} == set(cited)


async def test_models_lists_what_the_user_may_use_and_a_foreign_model_is_not_found(
    server: RunningServer, superadmin: GraphQLClient, extractive: ApiWorld
) -> None:
    foreign = await create_model(server.state.sessionmaker)
    sdk = extractive.sdk()
    listed = await sdk.models.list()
    assert [model.id for model in listed.data] == [str(extractive.model.id)]
    assert listed.data[0].owned_by == "ragql" and listed.data[0].model_extra["name"] == extractive.model.name
    assert (await sdk.models.retrieve(str(extractive.model.id))).id == str(extractive.model.id)

    answers = []
    for model_id in (str(foreign.id), str(uuid.uuid4()), "not-a-model"):
        with pytest.raises(openai.NotFoundError) as refused:
            await sdk.chat.completions.create(
                model=model_id, messages=[{"role": "user", "content": QUESTION}]
            )
        body = refused.value.body
        assert isinstance(body, dict) and body["code"] == "model_not_found", body
        answers.append(body["message"].replace(model_id, "<model>"))
        with pytest.raises(openai.NotFoundError):
            await sdk.models.retrieve(model_id)
    assert len(set(answers)) == 1  # a model you may not use looks exactly like a missing one
    assert await message_count(server, extractive.user) == 0


async def test_a_completion_over_an_extractive_model_is_answered_with_sources_and_stored(
    server: RunningServer, extractive: ApiWorld
) -> None:
    completion = await extractive.sdk().chat.completions.create(
        model=str(extractive.model.id),
        messages=[
            {"role": "system", "content": "Ignored: the model's own system prompt applies."},
            {"role": "user", "content": QUESTION},
        ],
        temperature=0.3,  # accepted and ignored
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    text = choice.message.content or ""
    assert "magnetic poles" in text
    extra = completion.model_extra or {}
    sources = extra["ragql_sources"]
    assert sources and sources[0]["document_title"] and "aurora" in sources[0]["snippet"].lower()
    assert_sources_match_markers(text, sources, extra["ragql_citations"])

    async with server.state.sessionmaker() as session:
        answer = await session.get(ChatMessage, uuid.UUID(extra["ragql_message_id"]))
        assert answer is not None and answer.user_id == extractive.user.id
        assert answer.status is MessageStatus.COMPLETE and answer.content == text
        chat = await session.get(ChatSession, uuid.UUID(extra["ragql_chat_session_id"]))
        assert chat is not None and chat.title == QUESTION and not chat.is_active
    assert completion.id == f"chatcmpl-{uuid.UUID(extra['ragql_message_id']).hex}"


async def test_a_streamed_completion_over_an_extractive_model(
    server: RunningServer, extractive: ApiWorld
) -> None:
    stream = await extractive.sdk().chat.completions.create(
        model=str(extractive.model.id),
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    first_sources = (chunks[0].model_extra or {})["ragql_sources"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    finals = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    final_extra = finals[0].model_extra or {}
    assert [source["number"] for source in final_extra["ragql_sources"]] == [
        s["number"] for s in first_sources
    ]
    assert "magnetic poles" in text
    assert_sources_match_markers(text, final_extra["ragql_sources"], final_extra["ragql_citations"])
    assert chunks[-1].choices == []  # the usage chunk (asked for with include_usage)
    assert len({chunk.id for chunk in chunks}) == 1


async def test_completions_over_an_openai_compatible_provider_whole_and_streamed(
    server: RunningServer, superadmin: GraphQLClient, fake_provider: FakeOpenAIServer
) -> None:
    model = await create_model(
        server.state.sessionmaker,
        provider=ProviderKind.OPENAI_COMPATIBLE,
        base_url=fake_provider.base_url,
        llm_model_name=DEFAULT_MODEL_NAME,
    )
    await ingest(superadmin, model.id, "aurora.txt", AURORA)
    world = await api_world(server, superadmin, model)
    sdk = world.sdk()
    history = [
        {"role": "user", "content": "Tell me about the northern lights."},
        {"role": "assistant", "content": "They are the aurora borealis."},
        {"role": "user", "content": [{"type": "text", "text": "What causes the aurora borealis?"}]},
    ]
    completion = await sdk.chat.completions.create(model=str(model.id), messages=history)  # type: ignore[arg-type]
    text = completion.choices[0].message.content or ""
    assert text == "Charged solar particles cause it [1]."
    extra = completion.model_extra or {}
    assert_sources_match_markers(text, extra["ragql_sources"], extra["ragql_citations"])
    assert completion.usage is not None and completion.usage.prompt_tokens == 42
    # The request's messages were the history the provider saw, the last user turn the question.
    sent = fake_provider.chat_requests()[-1].body["messages"]
    assert any("They are the aurora borealis." in str(message.get("content")) for message in sent)
    assert "What causes the aurora borealis?" in str(sent[-1]["content"])

    await _wait_until_finished(server, world.user)
    stream = await sdk.chat.completions.create(
        model=str(model.id),
        messages=history,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"store": False},
    )
    chunks = [chunk async for chunk in stream]
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert streamed == "Charged solar particles cause it [1]."
    final = next(chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason)
    final_extra = final.model_extra or {}
    assert_sources_match_markers(streamed, final_extra["ragql_sources"], final_extra["ragql_citations"])
    assert final_extra["ragql_message_id"] is None and final_extra["ragql_chat_session_id"] is None
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 42
    # "store": false kept nothing: only the first exchange (3 history/question rows + answer).
    assert await message_count(server, world.user) == 4


async def _wait_until_finished(server: RunningServer, user: User) -> None:
    # The non-streamed response is sent with the final event, just after the row is saved.
    for _ in range(100):
        async with server.state.sessionmaker() as session:
            pending = await session.scalar(
                select(func.count()).where(
                    ChatMessage.user_id == user.id,
                    ChatMessage.status.in_([MessageStatus.PENDING, MessageStatus.STREAMING]),
                )
            )
        if not pending:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the answer was not saved")


async def test_tokens_refused_with_401_and_403_in_openai_shape(
    server: RunningServer, superadmin: GraphQLClient, extractive: ApiWorld
) -> None:
    messages: Any = [{"role": "user", "content": QUESTION}]
    model = str(extractive.model.id)
    # A log-in session's access token is accepted too.
    session_token = extractive.session_client.token
    assert session_token is not None
    assert (await extractive.sdk(session_token).models.list()).data

    revoked = await extractive.session_client.execute(REVOKE, {"id": extractive.token_id})
    assert revoked["revokeAccessToken"]["__typename"] == "AccessToken"
    with pytest.raises(openai.AuthenticationError) as refused:
        await extractive.sdk().chat.completions.create(model=model, messages=messages)
    assert refused.value.status_code == 401 and "revoked" in refused.value.message
    assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        await extractive.sdk().models.list()
    for bad in ("ragql_pat_" + "x" * 43, "ragql_pat_short", "not.a.jwt"):
        with pytest.raises(openai.AuthenticationError):
            await extractive.sdk(bad).chat.completions.create(model=model, messages=messages)
    async with httpx.AsyncClient() as http:
        missing = await http.get(server.base_url + "/v1/models")
    assert missing.status_code == 401 and set(missing.json()["error"]) == {"message", "type", "param", "code"}

    admin_user = await create_user(server.state.sessionmaker, role=Role.ADMIN)
    admin = client_for(server.client, server.state.tokens, admin_user)
    admin_only_token, _ = await new_token(admin, ["ADMIN"])
    with pytest.raises(openai.PermissionDeniedError) as forbidden:
        await extractive.sdk(admin_only_token).chat.completions.create(model=model, messages=messages)
    assert forbidden.value.body["code"] == "insufficient_scope"  # type: ignore[index]
    assert await message_count(server, extractive.user) == 0
    assert await message_count(server, admin_user) == 0

    # An expired token, then a deactivated account: 401 with the reason, on /v1 too.
    expiring, expiring_id = await new_token(extractive.session_client, ["CHAT"])
    async with server.state.sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE personal_access_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": uuid.UUID(expiring_id)},
        )
    with pytest.raises(openai.AuthenticationError) as expired:
        await extractive.sdk(expiring).models.list()
    assert "expired" in expired.value.message
    working, _ = await new_token(extractive.session_client, ["CHAT"])
    assert (await extractive.sdk(working).models.list()).data
    async with server.state.sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": extractive.user.id}
        )
    with pytest.raises(openai.AuthenticationError) as deactivated:
        await extractive.sdk(working).chat.completions.create(model=model, messages=messages)
    assert "deactivated" in deactivated.value.message


async def test_bad_requests_are_refused_with_400_and_nothing_is_stored(
    server: RunningServer, extractive: ApiWorld
) -> None:
    sdk = extractive.sdk()
    model = str(extractive.model.id)
    bad_bodies: list[tuple[Any, str]] = [
        ([], "messages"),
        ([{"role": "assistant", "content": "Hello"}], "messages"),
        ([{"role": "system", "content": "Only a system prompt"}], "messages"),
        ([{"role": "tool", "content": "x", "tool_call_id": "1"}], "messages[0].role"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}],
            "messages[0].content[0]",
        ),
        ([{"role": "user", "content": "x" * (40 * 1024)}], "messages"),
    ]
    for messages, param in bad_bodies:
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.chat.completions.create(model=model, messages=messages)
        assert refused.value.body["param"] == param, refused.value.body  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], n=2)
    assert refused.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": QUESTION}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )

    headers = {"Authorization": f"Bearer {extractive.token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=60) as http:
        malformed = await http.post(
            server.base_url + "/v1/chat/completions", content=b"{not json", headers=headers
        )
        assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_request_error"
        # 9 MB: answered 413 (a body far over the limit, past 2 x limit + 8 MB, has its
        # connection closed instead: gql_server/http_limits.py).
        huge = await http.post(
            server.base_url + "/v1/chat/completions",
            content=b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}'
            % (model.encode(), b"x" * (9 * 1024 * 1024)),
            headers=headers,
        )
        assert huge.status_code == 413 and "MAX_REQUEST_BODY_KB" in huge.json()["error"]["message"]
        unknown = await http.get(server.base_url + "/v1/embeddings", headers=headers)
        assert unknown.status_code == 404 and "error" in unknown.json()
    assert await message_count(server, extractive.user) == 0
