"""Auth queries and mutations: thin — parse, call the service, map to types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import strawberry

from gql_server.auth import service, session_cookie
from gql_server.auth.types import (
    AuthPayload,
    LoggedOut,
    LogInResult,
    RefreshTokenResult,
    SignUpResult,
    http_response,
)
from gql_server.context import Info
from gql_server.errors import maps_domain_errors
from gql_server.exceptions import (
    InvalidRefreshTokenError,
    PasswordLoginDisabledError,
    RateLimitedError,
    SignUpDisabledError,
)
from gql_server.users.types import User

OPTIONAL_REFRESH_TOKEN = strawberry.argument(
    description=(
        "The refresh token. Omit it to use the `ragql_refresh` cookie; the request must then "
        "carry the header `X-Ragql-Session: cookie` and, if it has an Origin header, come "
        "from this server's own origin (else InvalidRefreshToken / ok: false)."
    )
)


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The signed-in user, or null when the request carries no valid token.")
    def me(self, info: Info) -> User | None:
        user = info.context.user
        return User.from_row(user) if user is not None else None


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Create an account (when sign-up is enabled) and sign in.")
    @maps_domain_errors
    async def sign_up(
        self, info: Info, email: str, password: str, display_name: str | None = None
    ) -> SignUpResult:
        state = info.context.state
        if not (state.settings.signup_enabled and state.settings.password_login_enabled):
            raise SignUpDisabledError()
        async with state.sessionmaker.begin() as session:
            issued = await service.sign_up(
                session,
                state.tokens,
                state.settings.refresh_token_days,
                passwords=state.passwords,
                email=email,
                password=password,
                display_name=display_name,
            )
        return AuthPayload.from_session(issued, info)

    @strawberry.mutation(description="Sign in with email and password.")
    @maps_domain_errors
    async def log_in(self, info: Info, email: str, password: str) -> LogInResult:
        state = info.context.state
        if not state.settings.password_login_enabled:
            raise PasswordLoginDisabledError()
        # Counted before the password is verified (see auth/rate_limit.py): parallel
        # guesses cannot all slip past the check while the first ones are being verified.
        admission = await state.login_limiter.admit(email, info.context.client_address)
        if not admission.allowed:
            raise RateLimitedError(
                f"Too many log-in attempts. Try again in {admission.retry_after} seconds.",
                retry_after_seconds=admission.retry_after,
            )
        issued = await service.log_in(
            state.sessionmaker,
            state.tokens,
            state.settings.refresh_token_days,
            passwords=state.passwords,
            email=email,
            password=password,
        )
        await state.login_limiter.succeeded(admission)
        return AuthPayload.from_session(issued, info)

    @strawberry.mutation(
        description=(
            "Exchange a refresh token for new tokens. Each refresh token works once. Without "
            "the argument the `ragql_refresh` cookie is used (CSRF rule: see the argument)."
        )
    )
    @maps_domain_errors
    async def refresh_token(
        self,
        info: Info,
        refresh_token: Annotated[str | None, OPTIONAL_REFRESH_TOKEN] = None,
    ) -> RefreshTokenResult:
        state = info.context.state
        request = info.context.request
        from_cookie = refresh_token is None
        if refresh_token is None:
            if problem := session_cookie.cross_site_problem(request):
                raise InvalidRefreshTokenError(problem)
            refresh_token = session_cookie.cookie_token(request)
            if refresh_token is None:
                raise InvalidRefreshTokenError("No session cookie was sent; log in again.")
        failure: InvalidRefreshTokenError | None = None
        async with state.sessionmaker.begin() as session:
            try:
                issued = await service.rotate_refresh_token(
                    session, state.tokens, state.settings.refresh_token_days, refresh_token=refresh_token
                )
            except InvalidRefreshTokenError as caught:
                # Commit anyway: detecting reuse revokes the token family, and that must stick.
                failure = caught
        if failure is not None:
            response = http_response(info)
            if from_cookie and response is not None:
                session_cookie.clear_refresh_cookie(response, request)  # it will never work again
            raise failure
        return AuthPayload.from_session(issued, info)

    @strawberry.mutation(
        description=(
            "Sign out: revokes the refresh token (and its family). Without the argument, the "
            "`ragql_refresh` cookie's token is revoked and the cookie cleared (same CSRF rule "
            "as refreshToken)."
        )
    )
    async def log_out(
        self, info: Info, refresh_token: Annotated[str | None, OPTIONAL_REFRESH_TOKEN] = None
    ) -> LoggedOut:
        request = info.context.request
        response = http_response(info)
        cookie_session = session_cookie.wants_cookie(request)
        if refresh_token is None:
            cookie = session_cookie.cookie_token(request)
            if cookie is None and not cookie_session:
                return LoggedOut()  # nothing to revoke (a bearer-only client), as before
            if session_cookie.cross_site_problem(request) is not None:
                return LoggedOut(ok=False)
            refresh_token = cookie
        async with info.context.state.sessionmaker.begin() as session:
            await service.log_out(session, refresh_token=refresh_token, user=info.context.user)
        if cookie_session and response is not None:
            session_cookie.clear_refresh_cookie(response, request)
        return LoggedOut()


@strawberry.type
class AuthSubscription:
    @strawberry.subscription(
        description="The user this WebSocket connection authenticated as (from connection_init), once, "
        "as the account is now (role included); null for an anonymous connection. An UNAUTHENTICATED "
        "error once the account was deactivated or signed out (password changed) since connection_init."
    )
    async def me(self, info: Info) -> AsyncIterator[User | None]:
        if info.context.user is None and info.context.auth_error is None:
            yield None
            return
        # Re-read: the connection may be older than a deactivation, demotion or password change.
        yield User.from_row(await info.context.require_current_user())
