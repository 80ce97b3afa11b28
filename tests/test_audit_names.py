"""The audit log names what it is about (issue 16): user emails, model and group names instead
of ids, resolved by dataloaders (one statement per kind of name for a whole page)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import RunningServer
from tests.factories import create_user
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

NAMES = """
query { auditLog(first: 100) { items { action targetType targetId targetName userEmail groupName details } } }
"""
PLAIN = """
query { auditLog(first: 100) { items { action targetType targetId details } } }
"""


@contextmanager
def counted_statements(server: RunningServer) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = server.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _ok(client: GraphQLClient, document: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.execute(document, variables))[field]
    assert "message" not in result, result
    return result


async def test_entries_carry_names_and_a_page_costs_a_few_statements(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    members = [await create_user(server.state.sessionmaker) for _ in range(4)]
    group_ids, model_ids = [], []
    for index in range(3):
        group = await _ok(
            superadmin,
            "mutation($n: String!) { createGroup(name: $n) { __typename ... on AccessGroup { id } ... on Error { message } } }",
            {"n": f"Readers {index}"},
            "createGroup",
        )
        group_ids.append(group["id"])
        model = await _ok(
            superadmin,
            "mutation($n: String!) { createModel(input: {name: $n, provider: EXTRACTIVE}) "
            "{ __typename ... on Model { id } ... on Error { message } } }",
            {"n": f"Manuals {index}"},
            "createModel",
        )
        model_ids.append(model["id"])
    for index, member in enumerate(members):
        await _ok(
            superadmin,
            "mutation($g: UUID!, $u: UUID!) { addGroupMember(groupId: $g, userId: $u) { __typename ... on Error { message } } }",
            {"g": group_ids[index % 3], "u": str(member.id)},
            "addGroupMember",
        )
        await _ok(
            superadmin,
            "mutation($m: UUID!, $u: UUID!) { grantModelAccess(modelId: $m, userId: $u) { __typename ... on Error { message } } }",
            {"m": model_ids[index % 3], "u": str(member.id)},
            "grantModelAccess",
        )
    await _ok(
        superadmin,
        "mutation($m: UUID!, $g: UUID!) { grantModelAccess(modelId: $m, groupId: $g) { __typename ... on Error { message } } }",
        {"m": model_ids[0], "g": group_ids[1]},
        "grantModelAccess",
    )

    with counted_statements(server) as plain_statements:
        await superadmin.execute(PLAIN)
    with counted_statements(server) as named_statements:
        items = (await superadmin.execute(NAMES))["auditLog"]["items"]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_action.setdefault(item["action"], []).append(item)

    assert {item["targetName"] for item in by_action["group.create"]} == {
        "Readers 0",
        "Readers 1",
        "Readers 2",
    }
    assert {item["targetName"] for item in by_action["model.create"]} == {
        "Manuals 0",
        "Manuals 1",
        "Manuals 2",
    }
    emails = {member.email for member in members}
    member_entries = by_action["group.add_member"]
    assert {item["userEmail"] for item in member_entries} == emails
    assert all(item["targetName"].startswith("Readers ") for item in member_entries)
    user_grants = [item for item in by_action["model.grant"] if item["userEmail"]]
    assert {item["userEmail"] for item in user_grants} == emails
    assert all(
        item["targetName"].startswith("Manuals ") and item["groupName"] is None for item in user_grants
    )
    group_grant = [item for item in by_action["model.grant"] if item["groupName"]]
    assert [(item["targetName"], item["groupName"]) for item in group_grant] == [("Manuals 0", "Readers 1")]

    # Names for 15 entries cost one statement per kind (users, groups, models), not one per entry.
    assert len(items) == 15
    assert len(named_statements) - len(plain_statements) <= 3, named_statements

    # A deleted object keeps the name recorded with the entry.
    await _ok(
        superadmin,
        "mutation($id: UUID!) { deleteGroup(groupId: $id) { __typename ... on Error { message } } }",
        {"id": group_ids[2]},
        "deleteGroup",
    )
    items = (await superadmin.execute(NAMES))["auditLog"]["items"]
    created = [
        item for item in items if item["action"] == "group.create" and item["targetId"] == group_ids[2]
    ]
    assert created[0]["targetName"] == "Readers 2"
    # A member entry of the deleted group has no name to fall back on: null, not an id.
    removed_member = [
        item for item in items if item["action"] == "group.add_member" and item["targetId"] == group_ids[2]
    ]
    assert removed_member and all(item["targetName"] is None for item in removed_member)
