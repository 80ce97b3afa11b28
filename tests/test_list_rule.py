"""Every list field follows one rule (gql_server/kit/pagination.py): `first` from 1 to 100,
then `offset` or `after`; past it, the same BAD_USER_INPUT error on every list. Before the
unification the documents list allowed 200 and answered InvalidInput, and chat clamped
`first` silently to 100 (a client asking for 150 could not tell a short page from the end)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import RunningServer
from tests.factories import create_model
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

ANY_ID = str(uuid.uuid4())
LISTS = {
    "models": "models(first: $first) { totalCount }",
    "users": "users(first: $first) { totalCount }",
    "accessGroups": "accessGroups(first: $first) { totalCount }",
    "auditLog": "auditLog(first: $first) { totalCount }",
    "chatSessions": "chatSessions(first: $first) { totalCount }",
    "messages": f'messages(sessionId: "{ANY_ID}", first: $first) {{ __typename }}',
    "documents": f'documents(modelId: "{ANY_ID}", first: $first) {{ __typename }}',
}


@pytest.mark.parametrize("field", sorted(LISTS))
async def test_every_list_refuses_a_page_past_the_maximum(superadmin: GraphQLClient, field: str) -> None:
    query = f"query($first: Int!) {{ {LISTS[field]} }}"
    for first in (0, 101):
        body = await superadmin.raw(query, {"first": first})
        assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["message"] == "`first` must be between 1 and 100."
    accepted = await superadmin.raw(query, {"first": 100})
    assert "errors" not in accepted, accepted


async def test_pages_continue_after_the_end_cursor(server: RunningServer, superadmin: GraphQLClient) -> None:
    names = {(await create_model(server.state.sessionmaker)).name for _ in range(3)}
    query = (
        "query($after: String) { models(first: 2, after: $after) { items { name } hasNextPage endCursor } }"
    )
    seen: list[str] = []
    after = None
    while True:
        page = (await superadmin.execute(query, {"after": after}))["models"]
        assert len(page["items"]) <= 2
        seen += [item["name"] for item in page["items"]]
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
    assert len(seen) == len(set(seen)) and names <= set(seen)
