"""Matrix entries for usage quotas (issue 14): myUsage, usage, groupUsage, modelUsage,
setUserQuota, setGroupQuota, and the administrators-only User.quota / AccessGroup.quota."""

from __future__ import annotations

from typing import Any

from tests.authz_matrix import MatrixEntry, Outcome, World, expect

QUOTA = "{ messagesPerDay tokensPerDay tokensPerMonth unlimited }"


async def _fresh_user(world: World, actor: str) -> dict[str, Any]:
    return {"id": await world.id_of("plain_user", fresh=True)}


async def _fresh_group(world: World, actor: str) -> dict[str, Any]:
    return {"id": await world.id_of("group", fresh=True)}


async def _member_in_group(world: World, actor: str) -> dict[str, Any]:
    await world.get("member_group")  # `member` belongs to it, so has a group to be refused on
    return {}


def _typename(name: str):  # type: ignore[no-untyped-def]
    def check(value: Any, world: World, actor: str) -> None:
        assert value["__typename"] == name, value

    return check


def _own_usage(value: Any, world: World, actor: str) -> None:
    assert value["messagesToday"] >= 0 and len(value["limits"]) == 3, value


def _groups_quota_seen(value: Any, world: World, actor: str) -> None:
    # A plain user (or the token's owner) in no group sees an empty list: nothing to refuse.
    if actor in ("user", "chat_token"):
        assert value == [], value
    else:
        assert all("quota" in group for group in value), value


ENTRIES = [
    MatrixEntry(
        field="myUsage",
        kind="query",
        document="query { myUsage { messagesToday tokensToday tokensThisMonth limits { kind limit used } } }",
        expect=expect.signed_in(),
        check=_own_usage,
    ),
    MatrixEntry(
        field="myUsage",
        case="models",
        kind="query",
        document="query { myUsage { models(first: 5) { totalCount items { model { id } messagesThisMonth } } } }",
        expect=expect.signed_in(),
    ),
    MatrixEntry(
        field="usage",
        kind="query",
        document="query { usage(first: 5) { totalCount items { user { id } messagesToday } } }",
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="groupUsage",
        kind="query",
        document=(
            "query { groupUsage(first: 5) { totalCount items { group { id } memberCount "
            "messagesToday tokensThisMonth days(last: 30) { day messages tokens } } } }"
        ),
        variables=_fresh_group,  # at least one group to list
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="modelUsage",
        kind="query",
        document=(
            "query { modelUsage(first: 5) { totalCount items { model { id } "
            "messagesToday tokensThisMonth days(last: 30) { day messages tokens } } } }"
        ),
        expect=expect.admin_only(),
    ),
    MatrixEntry(
        field="setUserQuota",
        kind="mutation",
        document=(
            "mutation($id: UUID!) { setUserQuota(userId: $id, input: {messagesPerDay: 10}) "
            f"{{ __typename ... on User {{ quota {QUOTA} }} }} }}"
        ),
        variables=_fresh_user,
        expect=expect.admin_only(),
        check=_typename("User"),
    ),
    MatrixEntry(
        field="setGroupQuota",
        kind="mutation",
        document=(
            "mutation($id: UUID!) { setGroupQuota(groupId: $id, input: {unlimited: [TOKENS_PER_DAY]}) "
            f"{{ __typename ... on AccessGroup {{ quota {QUOTA} }} }} }}"
        ),
        variables=_fresh_group,
        expect=expect.admin_only(),
        check=_typename("AccessGroup"),
    ),
    MatrixEntry(
        field="me",
        case="quota",
        kind="query",
        document=f"query {{ me {{ id quota {QUOTA} }} }}",
        expect={**expect.admin_only(), "anonymous": Outcome.HIDDEN},
    ),
    MatrixEntry(
        field="myGroups",
        case="quota",
        kind="query",
        document=f"query {{ myGroups {{ id quota {QUOTA} }} }}",
        variables=_member_in_group,
        expect=expect.per_actor(
            anonymous=Outcome.UNAUTHENTICATED,
            user=Outcome.ALLOWED,
            member=Outcome.FORBIDDEN,
            admin=Outcome.ALLOWED,
            superadmin=Outcome.ALLOWED,
            chat_token=Outcome.ALLOWED,
        ),
        check=_groups_quota_seen,
    ),
]
