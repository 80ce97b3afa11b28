"""Per-request GraphQL context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from gql_server.access_tokens.service import TokenGrant, still_valid
from gql_server.db.models import AccessTokenScope, User
from gql_server.errors import AuthenticationRequired
from gql_server.state import AppState

SIGNED_OUT = "This account is deactivated or its sessions were revoked."


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    response: Any = None
    user: User | None = None
    # Why authentication failed (expired, tampered, deactivated...), to tell the caller.
    auth_error: str | None = None
    connection_params: dict[str, Any] | None = None
    # Set when the caller authenticated with a personal access token: its id and scopes.
    # None for a log-in session's access token, which may do whatever the account may.
    personal_token: TokenGrant | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _loaders: dict[str, Any] = field(default_factory=dict)

    @property
    def sessionmaker(self):  # type: ignore[no-untyped-def]
        return self.state.sessionmaker

    @cached_property
    def client_address(self) -> str:
        client = self.request.client
        return client.host if client else "unknown"

    def require_user(self) -> User:
        """The signed-in user. Fields declare who may call them (gql_server/permissions.py);
        behind `signed_in()` this never raises, elsewhere it refuses the anonymous caller."""
        if self.user is None:
            raise AuthenticationRequired(
                self.auth_error or "Authentication required: send a valid access token."
            )
        return self.user

    def token_allows(self, scope: AccessTokenScope) -> bool:
        """Whether the credential allows `scope` (a log-in session allows every scope)."""
        return self.personal_token is None or self.personal_token.allows(scope)

    async def _current_account(self, user: User) -> tuple[User | None, str]:
        """The account (and the personal access token, if one was used) as they are now."""
        async with self.state.sessionmaker() as session:
            fresh = await session.get(User, user.id, populate_existing=True)
            if fresh is None or not fresh.is_active or fresh.token_version != user.token_version:
                return None, SIGNED_OUT
            if self.personal_token is not None and (
                problem := await still_valid(session, self.personal_token)
            ):
                return None, problem
        return fresh, ""

    async def refresh_socket_account(self) -> None:
        """On a WebSocket, re-read the account before each operation (one primary-key read,
        two with a personal access token).

        A socket authenticates once, at connection_init; without this an admin demoted after
        connecting could still run admin mutations over the open socket, and a deactivated
        user (or a revoked token) could still query. A gone, deactivated or revoked account
        or token signs the socket out (later operations are anonymous: UNAUTHENTICATED); a
        role change applies at once."""
        if not isinstance(self.request, WebSocket) or self.user is None:
            return
        fresh, reason = await self._current_account(self.user)
        if fresh is None:
            self.user = None
            self.personal_token = None
            self.auth_error = reason
            return
        self.user = fresh

    async def require_current_user(self) -> User:
        """Like require_user, but re-reads the account on long-lived WebSocket connections:
        a user deactivated (or whose password changed, or whose token was revoked) after
        connection_init loses access at the next operation, not when the socket happens to close."""
        user = self.require_user()
        if isinstance(self.request, WebSocket):
            fresh, reason = await self._current_account(user)
            if fresh is None:
                self.user = None
                self.personal_token = None
                self.auth_error = reason
                raise AuthenticationRequired(self.auth_error)
            self.user = fresh
            return fresh
        return user

    def loader(self, name: str, factory: Any) -> Any:
        """A dataloader created once per request (per WebSocket operation set)."""
        existing = self._loaders.get(name)
        if existing is None:
            existing = factory(self)
            self._loaders[name] = existing
        return existing


Info = StrawberryInfo[Context, None]
