"""Matrix entries for the foundation's auth fields (me, signUp, logIn, refreshToken, logOut)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.authz_matrix import MatrixEntry, Outcome, World, expect
from tests.factories import DEFAULT_PASSWORD

ME_HIDDEN_FOR_ANONYMOUS = {**expect.public(), "anonymous": Outcome.HIDDEN}


async def _new_account(world: World, actor: str) -> dict[str, Any]:
    return {"email": f"matrix-signup-{uuid.uuid4().hex[:8]}@example.com", "password": "matrix-password-1"}


async def _existing_account(world: World, actor: str) -> dict[str, Any]:
    user = await world.fresh("plain_user")
    return {"email": user.email, "password": DEFAULT_PASSWORD}


def _is_auth_payload(value: Any, world: World, actor: str) -> None:
    assert value["__typename"] == "AuthPayload", value


ENTRIES = [
    MatrixEntry(field="me", kind="query", document="query { me { id } }", expect=ME_HIDDEN_FOR_ANONYMOUS),
    MatrixEntry(
        field="me",
        kind="subscription",
        document="subscription { me { id } }",
        expect=ME_HIDDEN_FOR_ANONYMOUS,
    ),
    MatrixEntry(
        field="signUp",
        kind="mutation",
        document="""mutation($email: String!, $password: String!) {
          signUp(email: $email, password: $password) { __typename } }""",
        variables=_new_account,
        expect=expect.public(),
        check=_is_auth_payload,
    ),
    MatrixEntry(
        field="logIn",
        kind="mutation",
        document="""mutation($email: String!, $password: String!) {
          logIn(email: $email, password: $password) { __typename } }""",
        variables=_existing_account,
        expect=expect.public(),
        check=_is_auth_payload,
    ),
    MatrixEntry(
        field="refreshToken",
        kind="mutation",
        document='mutation { refreshToken(refreshToken: "not-a-token") { __typename } }',
        expect=expect.public(),
    ),
    MatrixEntry(
        field="logOut",
        kind="mutation",
        document="mutation { logOut { __typename } }",
        expect=expect.public(),
    ),
]
