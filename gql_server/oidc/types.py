"""GraphQL types of the OIDC log-in."""

from __future__ import annotations

from typing import Annotated

import strawberry

from gql_server.auth.types import AuthPayload


@strawberry.type(description="How people sign in here: what the log-in page offers.")
class AuthOptions:
    oidc_enabled: bool = strawberry.field(
        description="Single sign-on is configured: the page links to GET /auth/oidc/login."
    )
    oidc_display_name: str | None = strawberry.field(
        description='The button label: "Sign in with <oidcDisplayName>". Null without OIDC.'
    )
    password_login_enabled: bool = strawberry.field(description="logIn with email and password works.")
    sign_up_enabled: bool = strawberry.field(description="signUp creates accounts.")


@strawberry.type(description="The one-time log-in code is unknown, expired or was already used.")
class InvalidLoginCode:
    message: str


ExchangeLoginCodeResult = Annotated[
    AuthPayload | InvalidLoginCode, strawberry.union("ExchangeLoginCodeResult")
]
