"""The usage view (issue 14): administrators see usage per user, per access group (the sum
over its current members) and per model, today, this month and per UTC day; a user sees only
their own. Token figures come from the fake OpenAI server's reported counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from gql_server.db.models import GroupMembership, ModelAccessGrant, ProviderKind, Role
from gql_server.quotas import service as quota_service
from tests.chat_support import chat_world, start_session, stream_all
from tests.conftest import RunningServer
from tests.factories import client_for, create_group, create_model, create_user, grant_model
from tests.fake_llm_servers import DEFAULT_MODEL_NAME, FakeBehaviour, FakeOpenAIServer
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

PROMPT_TOKENS = 57
REPLY = ["Walruses ", "are ", "large ", "pinnipeds."]
ANSWER_TOKENS = PROMPT_TOKENS + len(REPLY)

FIGURES = """
  day messagesToday promptTokensToday completionTokensToday tokensToday messagesThisMonth tokensThisMonth
  days(last: 30) { day messages promptTokens completionTokens tokens }
"""
MODEL_USAGE = f"""
query($id: UUID) {{ modelUsage(modelId: $id) {{ totalCount items {{ model {{ id name }} {FIGURES} }} }} }}
"""
GROUP_USAGE = f"""
query($id: UUID) {{ groupUsage(groupId: $id) {{ totalCount items {{ group {{ id }} memberCount {FIGURES} }} }} }}
"""
USER_USAGE = f"""
query($id: UUID) {{ usage(userId: $id) {{ totalCount items {{ user {{ id }} {FIGURES} }} }} }}
"""
MODEL_FIGURES = (
    "models { totalCount items { model { id } messagesToday tokensToday messagesThisMonth tokensThisMonth } }"
)
USER_MODELS = f"query($id: UUID) {{ usage(userId: $id) {{ items {{ {MODEL_FIGURES} }} }} }}"
SEND = """
mutation($sessionId: UUID!, $content: String!) {
  sendMessage(sessionId: $sessionId, content: $content) { __typename ... on MessageSent { messageId } }
}
"""


async def _ask(client: GraphQLClient, session_id: str, content: str) -> None:
    result = (await client.execute(SEND, {"sessionId": session_id, "content": content}))["sendMessage"]
    assert result["__typename"] == "MessageSent", result
    events = await stream_all(client, result["messageId"])
    assert events[-1]["__typename"] == "DoneEvent", events[-1]


async def _one(client: GraphQLClient, query: str, field: str, subject_id: Any) -> dict[str, Any]:
    data = await client.execute(query, {"id": str(subject_id)})
    assert data[field]["totalCount"] == 1, data
    [item] = data[field]["items"]
    return item  # type: ignore[no-any-return]


def _check_days(item: dict[str, Any], messages_today: int, tokens_today: int) -> None:
    """30 days, oldest first, ending today; this test's use is all today's."""
    days = item["days"]
    today = datetime.now(UTC).date()
    assert len(days) == 30
    assert [day["day"] for day in days] == [(today - timedelta(days=29 - n)).isoformat() for n in range(30)]
    assert (days[-1]["messages"], days[-1]["tokens"]) == (messages_today, tokens_today)
    assert all(day["messages"] == day["tokens"] == 0 for day in days[:-1]), days


async def test_usage_per_model_and_per_group_equal_what_was_sent(server: RunningServer) -> None:
    sessionmaker = server.state.sessionmaker
    fake = FakeOpenAIServer(FakeBehaviour(tokens=REPLY, prompt_tokens=PROMPT_TOKENS))
    async with fake.serve():
        first = await chat_world(
            server,
            provider=ProviderKind.OPENAI_COMPATIBLE,
            base_url=fake.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
        )
        llm = first.model
        extractive = await create_model(sessionmaker)  # reports no tokens
        second = await chat_world(server, model=llm)
        outsider = await chat_world(server, model=extractive)
        await grant_model(sessionmaker, extractive, user=first.user)
        group = await create_group(sessionmaker, members=[first.user, second.user])
        admin_row = await create_user(sessionmaker, role=Role.ADMIN)
        admin = client_for(server.client, server.state.tokens, admin_row)

        first_llm = await start_session(first.client, llm.id)
        await _ask(first.client, first_llm, "Tell me about walruses")
        await _ask(first.client, first_llm, "And their tusks?")
        await _ask(second.client, await start_session(second.client, llm.id), "Walruses?")
        await _ask(first.client, await start_session(first.client, extractive.id), "Anything?")
        await _ask(outsider.client, await start_session(outsider.client, extractive.id), "Hello")

    # Per model, over every user: 3 answers of 61 reported tokens on the LLM model; the
    # extractive model had 2 messages and counted no tokens.
    on_llm = await _one(admin, MODEL_USAGE, "modelUsage", llm.id)
    assert on_llm["model"]["id"] == str(llm.id)
    assert (on_llm["messagesToday"], on_llm["messagesThisMonth"]) == (3, 3)
    assert (on_llm["promptTokensToday"], on_llm["completionTokensToday"]) == (
        3 * PROMPT_TOKENS,
        3 * len(REPLY),
    )
    assert on_llm["tokensToday"] == on_llm["tokensThisMonth"] == 3 * ANSWER_TOKENS
    _check_days(on_llm, 3, 3 * ANSWER_TOKENS)
    on_extractive = await _one(admin, MODEL_USAGE, "modelUsage", extractive.id)
    assert (on_extractive["messagesToday"], on_extractive["tokensToday"]) == (2, 0)
    _check_days(on_extractive, 2, 0)

    # Per group: its two members' sum (first: 3 messages, 2 answers with tokens; second: 1).
    in_group = await _one(admin, GROUP_USAGE, "groupUsage", group.id)
    assert in_group["memberCount"] == 2
    assert (in_group["messagesToday"], in_group["messagesThisMonth"]) == (4, 4)
    assert in_group["tokensToday"] == in_group["tokensThisMonth"] == 3 * ANSWER_TOKENS
    _check_days(in_group, 4, 3 * ANSWER_TOKENS)

    # Per user.
    of_first = await _one(admin, USER_USAGE, "usage", first.user.id)
    assert (of_first["messagesToday"], of_first["messagesThisMonth"]) == (3, 3)
    assert of_first["tokensToday"] == 2 * ANSWER_TOKENS
    _check_days(of_first, 3, 2 * ANSWER_TOKENS)

    # Per user and model: the first user's two models.
    per_model = (await admin.execute(USER_MODELS, {"id": str(first.user.id)}))["usage"]["items"][0]["models"]
    assert per_model["totalCount"] == 2
    assert {
        item["model"]["id"]: (item["messagesToday"], item["tokensToday"]) for item in per_model["items"]
    } == {
        str(llm.id): (2, 2 * ANSWER_TOKENS),
        str(extractive.id): (1, 0),
    }

    # A group counts its current members: once `second` leaves, their usage goes with them.
    async with sessionmaker.begin() as session:
        await session.execute(
            delete(GroupMembership).where(
                GroupMembership.group_id == group.id, GroupMembership.user_id == second.user.id
            )
        )
    in_group = await _one(admin, GROUP_USAGE, "groupUsage", group.id)
    assert (in_group["memberCount"], in_group["messagesToday"]) == (1, 3)
    assert in_group["tokensToday"] == 2 * ANSWER_TOKENS
    _check_days(in_group, 3, 2 * ANSWER_TOKENS)


async def test_a_user_sees_only_their_own_usage(server: RunningServer) -> None:
    sessionmaker = server.state.sessionmaker
    world = await chat_world(server)
    other = await chat_world(server, model=world.model)
    group = await create_group(sessionmaker, members=[world.user])
    await _ask(other.client, await start_session(other.client, world.model.id), "Someone else's question")
    await _ask(world.client, await start_session(world.client, world.model.id), "Mine")

    mine = (await world.client.execute(f"query {{ myUsage {{ user {{ id }} {FIGURES} }} }}"))["myUsage"]
    assert mine["user"]["id"] == str(world.user.id)
    assert mine["messagesToday"] == mine["messagesThisMonth"] == 1
    _check_days(mine, 1, 0)

    # Their usage per model: the model they still may read; once its grant is revoked, it is
    # no longer named to them (an administrator still sees it).
    own = (await world.client.execute(f"query {{ myUsage {{ {MODEL_FIGURES} }} }}"))["myUsage"]["models"]
    assert [(item["model"]["id"], item["messagesToday"]) for item in own["items"]] == [
        (str(world.model.id), 1)
    ]
    async with sessionmaker.begin() as session:
        await session.execute(delete(ModelAccessGrant).where(ModelAccessGrant.user_id == world.user.id))
    own = (await world.client.execute(f"query {{ myUsage {{ {MODEL_FIGURES} }} }}"))["myUsage"]["models"]
    assert own == {"totalCount": 0, "items": []}, own
    admin = client_for(server.client, server.state.tokens, await create_user(sessionmaker, role=Role.ADMIN))
    seen = (await admin.execute(USER_MODELS, {"id": str(world.user.id)}))["usage"]["items"][0]["models"]
    assert [(item["model"]["id"], item["messagesThisMonth"]) for item in seen["items"]] == [
        (str(world.model.id), 1)
    ]

    for query, field, subject in (
        (USER_USAGE, "usage", other.user.id),
        (GROUP_USAGE, "groupUsage", group.id),
        (MODEL_USAGE, "modelUsage", world.model.id),
    ):
        refused = await world.client.raw(query, {"id": str(subject)})
        assert refused["data"] is None, (field, refused)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", (field, refused)


async def test_the_per_day_series_refuses_a_range_outside_1_to_366(server: RunningServer) -> None:
    sessionmaker = server.state.sessionmaker
    admin = client_for(server.client, server.state.tokens, await create_user(sessionmaker, role=Role.ADMIN))
    subjects = {
        "groupUsage": (await create_group(sessionmaker)).id,
        "modelUsage": (await create_model(sessionmaker)).id,
    }
    for field, subject in subjects.items():
        argument = "groupId" if field == "groupUsage" else "modelId"
        for last in (0, 367):
            answer = await admin.raw(
                f"query($id: UUID) {{ {field}({argument}: $id) {{ items {{ days(last: {last}) {{ day }} }} }} }}",
                {"id": str(subject)},
            )
            assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", answer


async def test_deleting_a_model_keeps_the_users_usage(server: RunningServer) -> None:
    """The quota's counters outlive a deleted model; its per-model rows go with it."""
    sessionmaker = server.state.sessionmaker
    world = await chat_world(server)
    admin = client_for(server.client, server.state.tokens, await create_user(sessionmaker, role=Role.ADMIN))
    await _ask(world.client, await start_session(world.client, world.model.id), "Anything?")
    assert (await _one(admin, MODEL_USAGE, "modelUsage", world.model.id))["messagesToday"] == 1
    deleted = await admin.execute(
        "mutation($id: UUID!) { deleteModel(id: $id) { __typename } }", {"id": str(world.model.id)}
    )
    assert deleted["deleteModel"]["__typename"] == "ModelDeleted", deleted
    gone = await admin.execute(MODEL_USAGE, {"id": str(world.model.id)})
    assert gone["modelUsage"] == {"totalCount": 0, "items": []}
    # An answer that ends after its model was deleted still counts for the user.
    async with sessionmaker.begin() as session:
        await quota_service.record_answer_tokens(
            session, world.user.id, world.model.id, {"prompt_tokens": 5, "completion_tokens": 2}
        )
    of_user = await _one(admin, USER_USAGE, "usage", world.user.id)
    assert (of_user["messagesToday"], of_user["messagesThisMonth"], of_user["tokensToday"]) == (1, 1, 7)
    _check_days(of_user, 1, 7)
