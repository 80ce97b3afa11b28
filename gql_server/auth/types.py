"""GraphQL types for accounts and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from starlette.responses import Response

from gql_server.auth import session_cookie
from gql_server.errors import AlreadyExists, InvalidInput, RateLimited
from gql_server.users.types import User

if TYPE_CHECKING:
    from gql_server.auth.service import IssuedSession
    from gql_server.context import Info


def http_response(info: Info) -> Response | None:
    """The response of an HTTP request (to set cookies on); None on a WebSocket."""
    response = info.context.response
    return response if isinstance(response, Response) else None


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

    @classmethod
    def from_session(cls, issued: IssuedSession, info: Info) -> AuthPayload:
        """The session as a result. A browser that asked for a cookie session (header
        `X-Ragql-Session: cookie`) gets the refresh token as an HttpOnly cookie and null here."""
        refresh_token: str | None = issued.refresh_token
        response = http_response(info)
        if response is not None and session_cookie.wants_cookie(info.context.request):
            max_age = info.context.state.settings.refresh_token_days * 86400
            session_cookie.set_refresh_cookie(response, info.context.request, issued.refresh_token, max_age)
            refresh_token = None
        return cls(
            access_token=issued.access.token,
            access_token_expires_at=issued.access.expires_at,
            refresh_token=refresh_token,
            refresh_token_expires_at=issued.refresh_expires_at,
            user=User.from_row(issued.user),
        )


@strawberry.type(description="Log-in failed. The message never says whether the email has an account.")
class InvalidCredentials:
    message: str


@strawberry.type(description="The refresh token is invalid, expired, revoked or was already used.")
class InvalidRefreshToken:
    message: str


@strawberry.type(description="Sign-up is turned off on this server; ask an administrator for an account.")
class SignUpDisabled:
    message: str = "Sign-up is disabled on this server."


@strawberry.type(
    description="Password log-in is turned off on this server (PASSWORD_LOGIN_ENABLED=false); use single sign-on."
)
class PasswordLoginDisabled:
    message: str


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
LogInResult = Annotated[
    AuthPayload | InvalidCredentials | RateLimited | PasswordLoginDisabled, strawberry.union("LogInResult")
]
RefreshTokenResult = Annotated[AuthPayload | InvalidRefreshToken, strawberry.union("RefreshTokenResult")]
