"""GraphQL types for accounts and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gql_server.errors import AlreadyExists, InvalidInput, RateLimited
from gql_server.users.types import User


@strawberry.type(
    description="A signed-in session: a short-lived access token and a single-use refresh token."
)
class AuthPayload:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str | None = strawberry.field(
        description=(
            "The single-use refresh token. Null when the request carried the header "
            "`X-Ragql-Session: cookie`: the token was then set as the HttpOnly cookie "
            "`ragql_refresh` (Path=/graphql, SameSite=Strict), out of reach of page scripts."
        )
    )
    refresh_token_expires_at: datetime
    user: User


@strawberry.type(description="Log-in failed. The message never says whether the email has an account.")
class InvalidCredentials:
    message: str


@strawberry.type(description="The refresh token is invalid, expired, revoked or was already used.")
class InvalidRefreshToken:
    message: str


@strawberry.type(description="Sign-up is turned off on this server; ask an administrator for an account.")
class SignUpDisabled:
    message: str = "Sign-up is disabled on this server."


@strawberry.type
class LoggedOut:
    ok: bool = strawberry.field(
        default=True,
        description=(
            "False when the request was refused as possibly cross-site: a log-out from the "
            "session cookie without the header `X-Ragql-Session: cookie`, or from a foreign "
            "Origin. Nothing was revoked then."
        ),
    )


SignUpResult = Annotated[
    AuthPayload | InvalidInput | AlreadyExists | SignUpDisabled, strawberry.union("SignUpResult")
]
LogInResult = Annotated[AuthPayload | InvalidCredentials | RateLimited, strawberry.union("LogInResult")]
RefreshTokenResult = Annotated[AuthPayload | InvalidRefreshToken, strawberry.union("RefreshTokenResult")]
