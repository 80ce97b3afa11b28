"""Personal access tokens: create (the secret is returned once), list, revoke, authenticate.

A token is `ragql_pat_` + 32 random bytes; only its SHA-256 is stored, with the first
characters (`prefix`) so that lists can show which token is which. A token carries scopes
(`AccessTokenScope`): CHAT reaches models, search, chats, messages and reading documents;
ADMIN reaches administrative fields and can only be given by an administrator. Fields
declare the scope they need (gql_server/permissions.py); managing tokens and the password
needs a log-in session, never a token. Every request reads the token and its owner, so
revoking it or deactivating the account stops it at once; an open WebSocket re-reads both
before each operation (Context.refresh_socket_account).

Services never commit: the caller's transaction does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.access.policy import is_admin
from gql_server.access_tokens import repository
from gql_server.access_tokens.secret import (
    PERSONAL_TOKEN_SHOWN_CHARACTERS,
    hash_personal_access_token,
    new_personal_access_token,
    personal_token_is_well_formed,
)
from gql_server.db.base import utcnow
from gql_server.db.models import AccessTokenScope, PersonalAccessToken, User
from gql_server.exceptions import ForbiddenError, InvalidInputError, NotFoundError

MAX_NAME_CHARACTERS = 120
# Active (unrevoked, unexpired) tokens one user may hold.
MAX_ACTIVE_TOKENS_PER_USER = 50
# last_used_at is written at most this often per token (not on every request).
LAST_USED_RESOLUTION = timedelta(seconds=60)
TOKEN_NOT_FOUND = "Access token not found."

MALFORMED = "The personal access token is malformed: expected ragql_pat_ followed by 43 characters."
UNKNOWN = "The personal access token is not valid: it is unknown or was deleted."
REVOKED = "The personal access token was revoked."
DEACTIVATED = "This account is deactivated."


@dataclass(frozen=True)
class TokenGrant:
    """What a request authenticated by a personal access token may do (kept on the context)."""

    id: uuid.UUID
    scopes: frozenset[AccessTokenScope]
    expires_at: datetime | None

    @classmethod
    def of(cls, row: PersonalAccessToken) -> TokenGrant:
        return cls(row.id, frozenset(scopes_of(row)), row.expires_at)

    def allows(self, scope: AccessTokenScope) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class CreatedToken:
    row: PersonalAccessToken
    secret: str


def scopes_of(row: PersonalAccessToken) -> list[AccessTokenScope]:
    return [AccessTokenScope(value) for value in row.scopes if value in AccessTokenScope.__members__]


def expiry_problem(row: PersonalAccessToken, now: datetime) -> str | None:
    if row.revoked_at is not None:
        return REVOKED
    if row.expires_at is not None and row.expires_at <= now:
        return f"The personal access token expired at {row.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC."
    return None


async def create_token(
    session: AsyncSession,
    actor: User,
    *,
    name: str,
    expires_at: datetime | None,
    scopes: Sequence[AccessTokenScope],
) -> CreatedToken:
    now = utcnow()
    cleaned = " ".join(name.split())
    problems: list[tuple[str, str]] = []
    if not cleaned:
        problems.append(("name", "Name the token, e.g. after the script or tool that uses it."))
    elif len(cleaned) > MAX_NAME_CHARACTERS:
        problems.append(("name", f"The name can have at most {MAX_NAME_CHARACTERS} characters."))
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at <= now:
            problems.append(("expiresAt", "The expiry must be in the future (or null: never expires)."))
    chosen = sorted(set(scopes), key=lambda scope: scope.value)
    if not chosen:
        problems.append(("scopes", "Choose at least one scope (CHAT to chat, search and read)."))
    if problems:
        raise InvalidInputError(problems)
    if AccessTokenScope.ADMIN in chosen and not is_admin(actor):
        raise ForbiddenError("Only administrators can create tokens with the ADMIN scope.")
    if await repository.count_active_tokens(session, actor.id, now) >= MAX_ACTIVE_TOKENS_PER_USER:
        raise InvalidInputError.of(
            "name", f"You already have {MAX_ACTIVE_TOKENS_PER_USER} active tokens; revoke one first."
        )
    secret = new_personal_access_token()
    row = repository.add_token(
        session,
        PersonalAccessToken(
            id=uuid.uuid4(),
            user_id=actor.id,
            name=cleaned,
            prefix=secret[:PERSONAL_TOKEN_SHOWN_CHARACTERS],
            token_hash=hash_personal_access_token(secret),
            scopes=[scope.value for scope in chosen],
            created_at=now,
            expires_at=expires_at,
        ),
    )
    await session.flush()
    return CreatedToken(row, secret)


async def list_tokens(
    session: AsyncSession, *, user_id: uuid.UUID | None, include_revoked: bool, limit: int, offset: int
) -> tuple[Sequence[PersonalAccessToken], int]:
    return await repository.list_tokens(
        session, user_id=user_id, include_revoked=include_revoked, limit=limit, offset=offset
    )


async def revoke_token(session: AsyncSession, actor: User, token_id: uuid.UUID) -> PersonalAccessToken:
    """Owners revoke their own tokens, administrators anyone's; everybody else gets the
    NotFound of a token that does not exist. Revoking a revoked token changes nothing."""
    row = await repository.get_token_for_update(session, token_id)
    if row is None or (row.user_id != actor.id and not is_admin(actor)):
        raise NotFoundError(TOKEN_NOT_FOUND)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def authenticate_token(
    session: AsyncSession, token: str
) -> tuple[User | None, TokenGrant | None, str | None]:
    """(user, grant, None) for a usable token, else (None, None, the reason in words)."""
    if not personal_token_is_well_formed(token):
        return None, None, MALFORMED
    found = await repository.get_token_with_user(session, hash_personal_access_token(token))
    if found is None:
        return None, None, UNKNOWN
    row, user = found
    now = utcnow()
    if problem := expiry_problem(row, now):
        return None, None, problem
    if not user.is_active:
        return None, None, DEACTIVATED
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        await repository.mark_used(session, row.id, now)
    return user, TokenGrant.of(row), None


async def still_valid(session: AsyncSession, grant: TokenGrant) -> str | None:
    """Re-read a token an open connection authenticated with: the reason it no longer works."""
    row = await repository.get_token(session, grant.id)
    if row is None:
        return UNKNOWN
    return expiry_problem(row, utcnow())
