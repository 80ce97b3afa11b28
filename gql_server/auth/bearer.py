"""Who a bearer token is: a log-in session's access token (a JWT) or a personal access
token (`ragql_pat_…`). One function for every door — GraphQL over HTTP and WebSocket, and
the OpenAI-compatible API under /v1, the MCP server under /mcp — so they accept and refuse
tokens alike, and answer "the database is down" alike."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.access_tokens.secret import is_personal_access_token
from gql_server.access_tokens.service import TokenGrant, authenticate_token
from gql_server.auth.service import authenticate_access_token
from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.availability import DatabaseUnavailable, is_database_unavailable
from gql_server.db.models import User


@dataclass(frozen=True)
class BearerIdentity:
    user: User | None
    # Why the token was refused (expired, revoked, malformed, account deactivated...).
    reason: str | None = None
    # The personal access token's id and scopes; None for a log-in session's token.
    personal_token: TokenGrant | None = None


async def authenticate_bearer(
    sessionmaker: async_sessionmaker[AsyncSession], codec: AccessTokenCodec, token: str
) -> BearerIdentity:
    """Reads the account (and the token's row) on every call: a deactivation, a revoked
    token or a password change (for session tokens) takes effect at once. In a transaction of
    its own, because a personal access token's last_used_at is written.

    Raises `DatabaseUnavailable` when the rows cannot be read (the database killed or
    restarting): not a bug and not the caller's fault, so every door answers it as such."""
    try:
        async with sessionmaker.begin() as session:
            if is_personal_access_token(token):
                user, grant, reason = await authenticate_token(session, token)
                return BearerIdentity(user, reason, grant)
            user, reason = await authenticate_access_token(session, codec, token)
            return BearerIdentity(user, reason)
    except Exception as error:
        if is_database_unavailable(error):
            raise DatabaseUnavailable() from error
        raise
