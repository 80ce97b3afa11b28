"""Matrix entries for the OIDC log-in fields (authOptions, exchangeLoginCode) and group sync
(setGroupExternalName, createGroup's externalName, AccessGroup.externalName/lastSyncedAt)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.authz_matrix import MatrixEntry, Outcome, World, expect

TYPENAME = "{ __typename }"


async def _fresh_group(world: World, actor: str) -> dict[str, Any]:
    return {"id": await world.id_of("group", fresh=True), "external": f"idp-{uuid.uuid4().hex[:8]}"}


def _new_synced_group(world: World, actor: str) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    return {"name": f"matrix synced {suffix}", "external": f"idp-{suffix}"}


def _typename(name: str):  # type: ignore[no-untyped-def]
    def check(value: Any, world: World, actor: str) -> None:
        assert value["__typename"] == name, value

    return check


def _sync_fields_seen(value: Any, world: World, actor: str) -> None:
    # A plain user (or the token's owner) in no group sees an empty list: nothing to refuse.
    if actor in ("user", "chat_token"):
        assert value == [], value
    else:
        assert all("externalName" in group for group in value), value


ENTRIES = [
    MatrixEntry(
        field="authOptions",
        kind="query",
        document="query { authOptions { oidcEnabled oidcDisplayName passwordLoginEnabled signUpEnabled } }",
        expect=expect.public(),
    ),
    MatrixEntry(
        field="exchangeLoginCode",
        kind="mutation",
        document='mutation { exchangeLoginCode(code: "not-a-login-code") { __typename } }',
        expect=expect.public(),
        check=_typename("InvalidLoginCode"),
    ),
    MatrixEntry(
        field="setGroupExternalName",
        kind="mutation",
        document=(
            "mutation($id: UUID!, $external: String) "
            f"{{ setGroupExternalName(groupId: $id, externalName: $external) {TYPENAME} }}"
        ),
        variables=_fresh_group,
        expect=expect.admin_only(),
        check=_typename("AccessGroup"),
    ),
    MatrixEntry(
        field="createGroup",
        case="externalName",
        kind="mutation",
        document=(
            "mutation($name: String!, $external: String) "
            "{ createGroup(name: $name, externalName: $external) { __typename ... on AccessGroup { externalName } } }"
        ),
        variables=_new_synced_group,
        expect=expect.admin_only(),
        check=_typename("AccessGroup"),
    ),
    MatrixEntry(
        field="myGroups",
        case="sync fields",
        kind="query",
        document="query { myGroups { id externalName lastSyncedAt } }",
        expect=expect.per_actor(
            anonymous=Outcome.UNAUTHENTICATED,
            user=Outcome.ALLOWED,
            member=Outcome.FORBIDDEN,
            admin=Outcome.ALLOWED,
            superadmin=Outcome.ALLOWED,
            chat_token=Outcome.ALLOWED,
        ),
        check=_sync_fields_seen,
    ),
]
