"""Auth queries and mutations: thin — parse, call the service, map to types."""

from __future__ import annotations

from collections.abc import AsyncIterator

import strawberry

from gql_server.auth import service
from gql_server.auth.service import AuthFailure, IssuedSession
from gql_server.auth.types import (
    AuthPayload,
    InvalidCredentials,
    InvalidRefreshToken,
    LoggedOut,
    LogInResult,
    RefreshTokenResult,
    SignUpDisabled,
    SignUpResult,
)
from gql_server.context import Info
from gql_server.errors import AlreadyExists, InvalidInput, RateLimited
from gql_server.users.types import User


def _payload(issued: IssuedSession) -> AuthPayload:
    return AuthPayload(
        access_token=issued.access.token,
        access_token_expires_at=issued.access.expires_at,
        refresh_token=issued.refresh_token,
        refresh_token_expires_at=issued.refresh_expires_at,
        user=issued.user,  # type: ignore[arg-type]
    )


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The signed-in user, or null when the request carries no valid token.")
    def me(self, info: Info) -> User | None:
        return info.context.user  # type: ignore[return-value]


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Create an account (when sign-up is enabled) and sign in.")
    async def sign_up(
        self, info: Info, email: str, password: str, display_name: str | None = None
    ) -> SignUpResult:
        state = info.context.state
        if not state.settings.signup_enabled:
            return SignUpDisabled()
        try:
            async with state.sessionmaker.begin() as session:
                issued = await service.sign_up(
                    session,
                    state.tokens,
                    state.settings.refresh_token_days,
                    email=email,
                    password=password,
                    display_name=display_name,
                )
        except AuthFailure as failure:
            if failure.kind == "exists":
                return AlreadyExists(message=failure.message, field="email")
            return InvalidInput.of(failure.field or "input", failure.message)
        return _payload(issued)

    @strawberry.mutation(description="Sign in with email and password.")
    async def log_in(self, info: Info, email: str, password: str) -> LogInResult:
        state = info.context.state
        address = info.context.client_address
        retry_after = await state.login_limiter.retry_after(email.strip(), address)
        if retry_after is not None:
            return RateLimited(
                message=f"Too many log-in attempts. Try again in {retry_after} seconds.",
                retry_after_seconds=retry_after,
            )
        try:
            async with state.sessionmaker.begin() as session:
                issued = await service.log_in(
                    session, state.tokens, state.settings.refresh_token_days, email=email, password=password
                )
        except AuthFailure as failure:
            await state.login_limiter.record_failure(email.strip(), address)
            return InvalidCredentials(message=failure.message)
        await state.login_limiter.record_success(email.strip())
        return _payload(issued)

    @strawberry.mutation(
        description="Exchange a refresh token for new tokens. Each refresh token works once."
    )
    async def refresh_token(self, info: Info, refresh_token: str) -> RefreshTokenResult:
        state = info.context.state
        failure: AuthFailure | None = None
        async with state.sessionmaker.begin() as session:
            try:
                issued = await service.rotate_refresh_token(
                    session, state.tokens, state.settings.refresh_token_days, refresh_token=refresh_token
                )
            except AuthFailure as caught:
                # Commit anyway: detecting reuse revokes the token family, and that must stick.
                failure = caught
        if failure is not None:
            return InvalidRefreshToken(message=failure.message)
        return _payload(issued)

    @strawberry.mutation(description="Sign out: revokes the refresh token (and its family).")
    async def log_out(self, info: Info, refresh_token: str | None = None) -> LoggedOut:
        async with info.context.state.sessionmaker.begin() as session:
            await service.log_out(session, refresh_token=refresh_token, user=info.context.user)
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
        yield await info.context.require_current_user()  # type: ignore[misc]
