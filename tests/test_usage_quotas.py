"""Usage quotas (issue 14): messages per day and LLM tokens per day/month, set per user and
per access group, checked by sendMessage/regenerateMessage before anything is stored — on
one API process, on two sharing Redis, and under concurrent sends of one user."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gql_server.db.models import ChatMessage, ChatSession, ProviderKind, Role, UsageCounter
from gql_server.exceptions import UsageQuotaExceededError
from gql_server.quotas import service as quota_service
from gql_server.quotas.limits import QuotaKind, QuotaSource, month_resets_at
from tests.chat_support import chat_world, start_session, stream_all
from tests.conftest import RunningServer
from tests.factories import client_for, create_group, create_model, create_user, grant_model
from tests.fake_llm_servers import DEFAULT_MODEL_NAME, FakeBehaviour, FakeOpenAIServer
from tests.graphql_client import GraphQLClient
from tests.test_chat_redis import two_servers  # noqa: F401  (a fixture)

pytestmark = pytest.mark.asyncio

SEND = """
mutation Send($sessionId: UUID!, $content: String!) {
  sendMessage(sessionId: $sessionId, content: $content) {
    __typename
    ... on MessageSent { messageId }
    ... on QuotaExceeded { message kind limit used resetsAt }
    ... on Error { message }
  }
}
"""

REGENERATE = """
mutation Regenerate($id: UUID!) {
  regenerateMessage(messageId: $id) {
    __typename
    ... on MessageSent { messageId }
    ... on QuotaExceeded { message kind limit used resetsAt }
    ... on Error { message }
  }
}
"""

QUOTA_FIELDS = "messagesPerDay tokensPerDay tokensPerMonth unlimited"

SET_USER_QUOTA = f"""
mutation SetUserQuota($userId: UUID!, $input: QuotaInput!) {{
  setUserQuota(userId: $userId, input: $input) {{
    __typename
    ... on User {{ id quota {{ {QUOTA_FIELDS} }} }}
    ... on InvalidInput {{ message fieldErrors {{ field message }} }}
    ... on Error {{ message }}
  }}
}}
"""

SET_GROUP_QUOTA = f"""
mutation SetGroupQuota($groupId: UUID!, $input: QuotaInput!) {{
  setGroupQuota(groupId: $groupId, input: $input) {{
    __typename
    ... on AccessGroup {{ id quota {{ {QUOTA_FIELDS} }} }}
    ... on InvalidInput {{ message fieldErrors {{ field message }} }}
    ... on Error {{ message }}
  }}
}}
"""

SUMMARY_FIELDS = """
  user { id }
  day messagesToday promptTokensToday completionTokensToday tokensToday tokensThisMonth
  dayResetsAt monthResetsAt
  limits { kind limit source used remaining resetsAt }
"""
MY_USAGE = f"query {{ myUsage {{ {SUMMARY_FIELDS} }} }}"
USAGE_OF = f"""
query Usage($userId: UUID) {{
  usage(userId: $userId) {{ totalCount items {{ {SUMMARY_FIELDS} }} }}
}}
"""


def _next_utc_midnight() -> str:
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=UTC).isoformat()


async def _admin(server: RunningServer) -> GraphQLClient:
    admin = await create_user(server.state.sessionmaker, role=Role.ADMIN)
    return client_for(server.client, server.state.tokens, admin)


async def _set_user_quota(admin: GraphQLClient, user_id: Any, **values: Any) -> dict[str, Any]:
    data = await admin.execute(SET_USER_QUOTA, {"userId": str(user_id), "input": values})
    return data["setUserQuota"]  # type: ignore[no-any-return]


async def _set_group_quota(admin: GraphQLClient, group_id: Any, **values: Any) -> dict[str, Any]:
    data = await admin.execute(SET_GROUP_QUOTA, {"groupId": str(group_id), "input": values})
    return data["setGroupQuota"]  # type: ignore[no-any-return]


async def _send(client: GraphQLClient, session_id: str, content: str) -> dict[str, Any]:
    return (await client.execute(SEND, {"sessionId": session_id, "content": content}))["sendMessage"]  # type: ignore[no-any-return]


async def _send_and_finish(client: GraphQLClient, session_id: str, content: str) -> str:
    result = await _send(client, session_id, content)
    assert result["__typename"] == "MessageSent", result
    events = await stream_all(client, result["messageId"])
    assert events[-1]["__typename"] == "DoneEvent", events[-1]
    return str(result["messageId"])


def _limit(summary: dict[str, Any], kind: str) -> dict[str, Any]:
    [status] = [status for status in summary["limits"] if status["kind"] == kind]
    return status


async def _stored_messages(server: RunningServer, session_id: str) -> int:
    async with server.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ChatMessage)
            .where(ChatMessage.session_id == uuid.UUID(session_id))
        )
    return int(count or 0)


async def test_a_user_at_the_message_limit_is_refused_and_nothing_is_stored(server: RunningServer) -> None:
    world = await chat_world(server)
    admin = await _admin(server)
    result = await _set_user_quota(admin, world.user.id, messagesPerDay=2)
    assert result["quota"] == {
        "messagesPerDay": 2,
        "tokensPerDay": None,
        "tokensPerMonth": None,
        "unlimited": [],
    }
    session_id = await start_session(world.client, world.model.id)
    await _send_and_finish(world.client, session_id, "What is a walrus?")
    second = await _send_and_finish(world.client, session_id, "And a seal?")
    assert await _stored_messages(server, session_id) == 4

    refused = await _send(world.client, session_id, "One more")
    assert refused["__typename"] == "QuotaExceeded", refused
    assert (refused["kind"], refused["limit"], refused["used"]) == ("MESSAGES_PER_DAY", 2, 2)
    assert datetime.fromisoformat(refused["resetsAt"]) == datetime.fromisoformat(_next_utc_midnight())
    assert "2 of your 2 messages" in refused["message"]
    # Regenerating costs a message too: refused the same way, the answer left in place.
    regenerated = (await world.client.execute(REGENERATE, {"id": second}))["regenerateMessage"]
    assert regenerated["__typename"] == "QuotaExceeded", regenerated
    assert await _stored_messages(server, session_id) == 4

    usage = (await world.client.execute(MY_USAGE))["myUsage"]
    assert usage["messagesToday"] == 2 and usage["tokensToday"] == 0  # EXTRACTIVE counts no tokens
    messages = _limit(usage, "MESSAGES_PER_DAY")
    assert (messages["limit"], messages["used"], messages["remaining"], messages["source"]) == (
        2,
        2,
        0,
        "USER",
    )
    assert _limit(usage, "TOKENS_PER_MONTH")["limit"] is None
    assert datetime.fromisoformat(usage["monthResetsAt"]) == month_resets_at(datetime.now(UTC))

    # Raising the limit lets the user go on at once.
    await _set_user_quota(admin, world.user.id, messagesPerDay=3)
    await _send_and_finish(world.client, session_id, "One more")
    assert (await _send(world.client, session_id, "Again"))["__typename"] == "QuotaExceeded"


async def test_tokens_are_the_providers_reported_counts_and_limit_the_next_message(
    server: RunningServer,
) -> None:
    tokens = ["Walruses ", "are ", "large ", "pinnipeds."]
    fake = FakeOpenAIServer(FakeBehaviour(tokens=tokens, prompt_tokens=57))
    silent = FakeOpenAIServer(FakeBehaviour(tokens=tokens, report_usage=False))
    async with fake.serve(), silent.serve():
        world = await chat_world(
            server,
            provider=ProviderKind.OPENAI_COMPATIBLE,
            base_url=fake.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
        )
        admin = await _admin(server)
        group = await create_group(server.state.sessionmaker, members=[world.user])
        await _set_group_quota(admin, group.id, tokensPerDay=100)
        session_id = await start_session(world.client, world.model.id)
        first = await _send_and_finish(world.client, session_id, "Tell me about walruses")
        stored = (
            await world.client.execute(
                "query($id: UUID!) { chatMessage(id: $id) { ... on ChatMessage { tokenUsage { promptTokens completionTokens } } } }",
                {"id": first},
            )
        )["chatMessage"]["tokenUsage"]
        assert stored == {"promptTokens": 57, "completionTokens": len(tokens)}
        usage = (await world.client.execute(MY_USAGE))["myUsage"]
        assert (usage["promptTokensToday"], usage["completionTokensToday"]) == (57, len(tokens))
        assert usage["tokensToday"] == usage["tokensThisMonth"] == 57 + len(tokens)
        status = _limit(usage, "TOKENS_PER_DAY")
        assert (status["limit"], status["used"], status["source"]) == (100, 61, "GROUP")

        # 61 < 100: the next question goes through and overshoots (a reply's size is unknown
        # in advance) — by one answer at most: the one after is refused.
        await _send_and_finish(world.client, session_id, "And their tusks?")
        refused = await _send(world.client, session_id, "And their diet?")
        assert refused["__typename"] == "QuotaExceeded", refused
        assert (refused["kind"], refused["limit"], refused["used"]) == ("TOKENS_PER_DAY", 100, 122)
        # The month's limit resets on the 1st, 00:00 UTC.
        await _set_group_quota(admin, group.id, tokensPerMonth=122)
        refused = await _send(world.client, session_id, "And their diet?")
        assert refused["kind"] == "TOKENS_PER_MONTH", refused
        assert datetime.fromisoformat(refused["resetsAt"]) == month_resets_at(datetime.now(UTC))

        # A provider that reports no usage counts 0 tokens.
        quiet = await create_model(
            server.state.sessionmaker,
            provider=ProviderKind.OPENAI_COMPATIBLE,
            base_url=silent.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
        )
        other = await chat_world(server, model=quiet)
        quiet_session = await start_session(other.client, quiet.id)
        await _send_and_finish(other.client, quiet_session, "Hello")
        usage = (await other.client.execute(MY_USAGE))["myUsage"]
        assert (usage["messagesToday"], usage["tokensToday"]) == (1, 0)


async def test_per_user_quota_overrides_groups_and_the_most_generous_group_wins(
    server: RunningServer,
) -> None:
    sessionmaker = server.state.sessionmaker
    admin = await _admin(server)
    user = await create_user(sessionmaker)
    strict = await create_group(sessionmaker, members=[user])
    generous = await create_group(sessionmaker, members=[user])
    silent = await create_group(sessionmaker, members=[user])  # sets nothing: has no say

    async def limits() -> dict[str, tuple[Any, str]]:
        [item] = (await admin.execute(USAGE_OF, {"userId": str(user.id)}))["usage"]["items"]
        return {status["kind"]: (status["limit"], status["source"]) for status in item["limits"]}

    assert (await limits())["MESSAGES_PER_DAY"] == (None, "NONE")
    await _set_group_quota(admin, strict.id, messagesPerDay=5, tokensPerDay=1000)
    await _set_group_quota(admin, generous.id, messagesPerDay=50)
    await _set_group_quota(admin, silent.id)
    now = await limits()
    assert now["MESSAGES_PER_DAY"] == (50, "GROUP")
    assert now["TOKENS_PER_DAY"] == (1000, "GROUP")  # only `strict` sets it
    assert now["TOKENS_PER_MONTH"] == (None, "NONE")

    # A group's UNLIMITED is the most generous of all.
    await _set_group_quota(admin, generous.id, unlimited=["MESSAGES_PER_DAY", "TOKENS_PER_DAY"])
    now = await limits()
    assert now["MESSAGES_PER_DAY"] == (None, "GROUP") and now["TOKENS_PER_DAY"] == (None, "GROUP")

    # The user's own value wins, stricter or not; their UNLIMITED too.
    result = await _set_user_quota(admin, user.id, messagesPerDay=3, unlimited=["TOKENS_PER_MONTH"])
    assert result["quota"] == {
        "messagesPerDay": 3,
        "tokensPerDay": None,
        "tokensPerMonth": None,
        "unlimited": ["TOKENS_PER_MONTH"],
    }
    await _set_group_quota(admin, strict.id, tokensPerMonth=10)
    now = await limits()
    assert now["MESSAGES_PER_DAY"] == (3, "USER")
    assert now["TOKENS_PER_DAY"] == (None, "GROUP")
    assert now["TOKENS_PER_MONTH"] == (None, "USER")

    # Cleared: the groups decide again; with no group setting a limit, the server default.
    await _set_user_quota(admin, user.id)
    await _set_group_quota(admin, generous.id)
    await _set_group_quota(admin, strict.id)
    with_default = server.settings.model_copy(update={"quota_default_messages_per_day": 7})
    async with sessionmaker() as session:
        [summary] = await quota_service.summaries(session, with_default, [user])
    by_kind = {status.kind: status for status in summary.limits}
    assert (by_kind[QuotaKind.MESSAGES_PER_DAY].limit, by_kind[QuotaKind.MESSAGES_PER_DAY].source) == (
        7,
        QuotaSource.DEFAULT,
    )
    assert by_kind[QuotaKind.TOKENS_PER_DAY].source is QuotaSource.NONE


async def test_bad_quota_input_is_refused_and_changes_nothing(server: RunningServer) -> None:
    admin = await _admin(server)
    user = await create_user(server.state.sessionmaker)
    group = await create_group(server.state.sessionmaker)
    await _set_user_quota(admin, user.id, messagesPerDay=10)
    refused = await _set_user_quota(admin, user.id, messagesPerDay=-1, tokensPerDay=5)
    assert refused["__typename"] == "InvalidInput", refused
    assert [error["field"] for error in refused["fieldErrors"]] == ["messagesPerDay"]
    both = await _set_group_quota(admin, group.id, tokensPerMonth=5, unlimited=["TOKENS_PER_MONTH"])
    assert both["__typename"] == "InvalidInput" and both["fieldErrors"][0]["field"] == "tokensPerMonth"
    too_big = await _set_group_quota(admin, group.id, tokensPerDay=2_100_000_000)
    assert too_big["__typename"] == "InvalidInput", too_big
    missing = await _set_user_quota(admin, uuid.uuid4(), messagesPerDay=1)
    assert missing["__typename"] == "NotFound"
    data = await admin.execute(
        "query($id: UUID!) { usage(userId: $id) { items { user { quota { messagesPerDay tokensPerDay } } } } }",
        {"id": str(user.id)},
    )
    assert data["usage"]["items"][0]["user"]["quota"] == {"messagesPerDay": 10, "tokensPerDay": None}
    group_quota = await admin.execute(
        "query($name: String) { accessGroups(search: $name) { items { id quota { tokensPerMonth tokensPerDay unlimited } } } }",
        {"name": group.name},
    )
    [mine] = [item for item in group_quota["accessGroups"]["items"] if item["id"] == str(group.id)]
    assert mine["quota"] == {"tokensPerMonth": None, "tokensPerDay": None, "unlimited": []}


async def _rounds_until_refused(clients: list[GraphQLClient], session_id: str, per_round: int) -> list[str]:
    """Fire `per_round` sends at once (spread over `clients`), wait for any accepted answer,
    repeat until a whole round is refused by the quota. Returns every accepted message id."""
    accepted: list[str] = []
    for _ in range(20):
        results = await asyncio.gather(
            *(
                _send(clients[index % len(clients)], session_id, f"Question {len(accepted)}.{index}")
                for index in range(per_round)
            )
        )
        kinds = {result["__typename"] for result in results}
        assert kinds <= {"MessageSent", "GenerationInProgress", "QuotaExceeded"}, results
        sent = [result["messageId"] for result in results if result["__typename"] == "MessageSent"]
        accepted.extend(sent)
        for message_id in sent:
            events = await stream_all(clients[0], message_id)
            assert events[-1]["__typename"] == "DoneEvent", events[-1]
        if kinds == {"QuotaExceeded"}:
            return accepted
    raise AssertionError(f"the quota never refused a whole round; accepted {len(accepted)}")


async def _counted_messages(server_state: Any, user_id: uuid.UUID) -> int:
    async with server_state.sessionmaker() as session:
        total = await session.scalar(
            select(func.sum(UsageCounter.messages)).where(UsageCounter.user_id == user_id)
        )
    return int(total or 0)


async def test_concurrent_sends_never_overshoot_the_message_limit(server: RunningServer) -> None:
    world = await chat_world(server)
    admin = await _admin(server)
    await _set_user_quota(admin, world.user.id, messagesPerDay=3)
    session_id = await start_session(world.client, world.model.id)
    accepted = await _rounds_until_refused([world.client], session_id, per_round=10)
    assert len(accepted) == 3
    assert await _counted_messages(server.state, world.user.id) == 3
    assert await _stored_messages(server, session_id) == 6


async def test_the_limit_holds_across_two_api_processes(two_servers: Any) -> None:  # noqa: F811
    app_a, _, client_a, client_b = two_servers
    state = app_a.state.app_state
    user = await create_user(state.sessionmaker)
    admin_user = await create_user(state.sessionmaker, role=Role.ADMIN)
    model = await create_model(state.sessionmaker, provider=ProviderKind.EXTRACTIVE)
    await grant_model(state.sessionmaker, model, user=user)
    group = await create_group(state.sessionmaker, members=[user])
    # Set on process B, enforced on both.
    admin_b = client_for(client_b, state.tokens, admin_user)
    await _set_group_quota(admin_b, group.id, messagesPerDay=4)
    on_a = client_for(client_a, state.tokens, user)
    on_b = client_for(client_b, state.tokens, user)
    session_id = await start_session(on_a, model.id)
    await _send_and_finish(on_a, session_id, "First, on A")
    await _send_and_finish(on_b, session_id, "Second, on B")
    # The remaining two, raced from both processes at once.
    accepted = await _rounds_until_refused([on_a, on_b], session_id, per_round=8)
    assert len(accepted) == 2
    for client in (on_a, on_b):
        refused = await _send(client, session_id, "Past the limit")
        assert refused["__typename"] == "QuotaExceeded", refused
        assert (refused["kind"], refused["limit"], refused["used"]) == ("MESSAGES_PER_DAY", 4, 4)
    assert await _counted_messages(state, user.id) == 4
    usage = (await on_b.execute(MY_USAGE))["myUsage"]
    assert usage["messagesToday"] == 4


CREATE_TOKEN = """
mutation { createAccessToken(name: "quota test", scopes: [CHAT]) {
  __typename ... on AccessTokenCreated { secret } } }
"""


async def test_the_openai_compatible_api_counts_against_the_same_quota(server: RunningServer) -> None:
    world = await chat_world(server)
    admin = await _admin(server)
    await _set_user_quota(admin, world.user.id, messagesPerDay=2)
    created = (await world.client.execute(CREATE_TOKEN))["createAccessToken"]
    headers = {"Authorization": f"Bearer {created['secret']}"}
    body = {
        "model": str(world.model.id),
        "messages": [{"role": "user", "content": "What is a walrus?"}],
        "store": False,
    }
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        answered = await http.post("/v1/chat/completions", json=body, headers=headers)
        assert answered.status_code == 200, answered.text
        # One left: a GraphQL send takes it, then /v1 is refused in OpenAI's shape.
        session_id = await start_session(world.client, world.model.id)
        await _send_and_finish(world.client, session_id, "And a seal?")
        refused = await http.post("/v1/chat/completions", json={**body, "store": True}, headers=headers)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "2 of your 2 messages" in error["message"]
    usage = (await world.client.execute(MY_USAGE))["myUsage"]
    assert usage["messagesToday"] == 2
    async with server.state.sessionmaker() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(ChatMessage)
            .join(ChatSession, ChatSession.id == ChatMessage.session_id)
            .where(ChatSession.user_id == world.user.id)
        )
    assert stored == 2  # the GraphQL question and its answer; nothing from /v1 (store false, then refused)


async def test_the_mcp_ask_tool_is_refused_with_the_quota_sentence(server: RunningServer) -> None:
    from tests.test_mcp_server import error_text, mcp_client

    world = await chat_world(server)
    admin = await _admin(server)
    await _set_user_quota(admin, world.user.id, messagesPerDay=0)
    created = (await world.client.execute(CREATE_TOKEN))["createAccessToken"]
    async with mcp_client(server, created["secret"]) as client:
        result = await client.call_tool("ask", {"model": str(world.model.id), "question": "Walruses?"})
    assert "0 of your 0 messages today" in error_text(result)


async def test_usage_per_day_and_the_months_sum(server: RunningServer) -> None:
    admin = await _admin(server)
    user = await create_user(server.state.sessionmaker)
    today = datetime.now(UTC).date()
    yesterday, long_ago = today - timedelta(days=1), today - timedelta(days=40)
    async with server.state.sessionmaker.begin() as session:
        session.add(
            UsageCounter(user_id=user.id, day=today, messages=2, prompt_tokens=10, completion_tokens=5)
        )
        session.add(
            UsageCounter(user_id=user.id, day=yesterday, messages=3, prompt_tokens=7, completion_tokens=1)
        )
        session.add(
            UsageCounter(user_id=user.id, day=long_ago, messages=9, prompt_tokens=900, completion_tokens=9)
        )
    data = await admin.execute(
        """query($id: UUID) { usage(userId: $id) { totalCount items {
             messagesToday tokensToday tokensThisMonth days(last: 3) { day messages promptTokens completionTokens tokens }
           } } }""",
        {"id": str(user.id)},
    )
    assert data["usage"]["totalCount"] == 1
    [item] = data["usage"]["items"]
    assert (item["messagesToday"], item["tokensToday"]) == (2, 15)
    # The month's tokens: every day of this UTC month so far (yesterday only if it is in it).
    assert item["tokensThisMonth"] == 15 + (8 if yesterday.month == today.month else 0)
    assert item["days"] == [
        {
            "day": (today - timedelta(days=2)).isoformat(),
            "messages": 0,
            "promptTokens": 0,
            "completionTokens": 0,
            "tokens": 0,
        },
        {"day": yesterday.isoformat(), "messages": 3, "promptTokens": 7, "completionTokens": 1, "tokens": 8},
        {"day": today.isoformat(), "messages": 2, "promptTokens": 10, "completionTokens": 5, "tokens": 15},
    ]
    long = await admin.raw(
        "query($id: UUID) { usage(userId: $id) { items { days(last: 41) { day messages } } } }",
        {"id": str(user.id)},
    )
    assert long["data"]["usage"]["items"][0]["days"][0] == {"day": long_ago.isoformat(), "messages": 9}
    too_many = await admin.raw(
        "query($id: UUID) { usage(userId: $id) { items { days(last: 367) { day } } } }", {"id": str(user.id)}
    )
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", too_many


async def test_concurrent_reservations_in_separate_transactions_never_overshoot(
    server: RunningServer,
) -> None:
    """The quota's own serialisation, without the one-answer-in-flight rule of chat: ten
    transactions on ten connections reserve at once against a limit of 3."""
    sessionmaker = server.state.sessionmaker
    admin = await _admin(server)
    user = await create_user(sessionmaker)
    model = await create_model(sessionmaker)
    await _set_user_quota(admin, user.id, messagesPerDay=3)
    start = asyncio.Event()

    async def reserve() -> bool:
        async with sessionmaker.begin() as session:
            await start.wait()
            try:
                await quota_service.reserve_message(session, server.settings, user.id, model.id)
            except UsageQuotaExceededError:
                return False
            await asyncio.sleep(0.05)  # hold the transaction open: others must wait, not read stale
            return True

    tasks = [asyncio.create_task(reserve()) for _ in range(10)]
    await asyncio.sleep(0.1)
    start.set()
    results = await asyncio.gather(*tasks)
    assert results.count(True) == 3, results
    assert await _counted_messages(server.state, user.id) == 3
