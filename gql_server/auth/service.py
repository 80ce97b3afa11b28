"""Accounts and sessions: sign-up, log-in, refresh-token rotation, log-out, bearer auth.

Services never commit: the caller's `sessionmaker.begin()` block commits once, or rolls back.
The exception is `log_in`, which runs its own two short transactions around the password
verification so that no database connection is held while Argon2 runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.auth import repository
from gql_server.auth.passwords import PasswordHashing, hash_password, needs_rehash, password_problem
from gql_server.auth.tokens import (
    AccessTokenCodec,
    InvalidToken,
    IssuedAccessToken,
    hash_refresh_token,
    new_refresh_token,
    refresh_expiry,
)
from gql_server.db.models import RefreshToken, Role, User
from gql_server.exceptions import (
    AlreadyExistsError,
    InvalidCredentialsError,
    InvalidInputError,
    InvalidRefreshTokenError,
)

logger = logging.getLogger(__name__)

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$|^[^@\s]{1,64}@localhost$")
INVALID_CREDENTIALS = "The email or password is incorrect."


@dataclass(frozen=True)
class IssuedSession:
    user: User
    access: IssuedAccessToken
    refresh_token: str
    refresh_expires_at: datetime


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    if len(email) > 320 or not EMAIL_PATTERN.match(email):
        return "Enter a valid email address, like name@example.com."
    return None


async def _issue_session(
    session: AsyncSession, codec: AccessTokenCodec, user: User, refresh_days: int, family_id: uuid.UUID | None
) -> IssuedSession:
    refresh_token = new_refresh_token()
    expires_at = refresh_expiry(refresh_days)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=hash_refresh_token(refresh_token),
            expires_at=expires_at,
        )
    )
    return IssuedSession(
        user=user,
        access=codec.issue(user.id, user.token_version),
        refresh_token=refresh_token,
        refresh_expires_at=expires_at,
    )


async def sign_up(
    session: AsyncSession,
    codec: AccessTokenCodec,
    refresh_days: int,
    *,
    passwords: PasswordHashing,
    email: str,
    password: str,
    display_name: str | None,
) -> IssuedSession:
    email = normalise_email(email)
    problems: list[tuple[str, str]] = []
    if problem := email_problem(email):
        problems.append(("email", problem))
    if problem := password_problem(password, email):
        problems.append(("password", problem))
    name = (display_name or "").strip()
    if len(name) > 120:
        problems.append(("displayName", "The display name can have at most 120 characters."))
    if problems:
        # One field error carrying every message, named after the first field (as clients know it).
        raise InvalidInputError.of(problems[0][0], "; ".join(message for _, message in problems))
    # Hashed before the first query: the session takes a pooled connection only at its
    # first statement, and none should wait idle while a hash queues for the pool.
    password_hash = await passwords.hash(password)
    if await repository.get_user_by_email(session, email) is not None:
        raise AlreadyExistsError("An account with this email already exists.", field="email")
    user = User(email=email, display_name=name or email.split("@")[0], password_hash=password_hash)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as error:  # a concurrent sign-up with the same email won the race
        raise AlreadyExistsError("An account with this email already exists.", field="email") from error
    return await _issue_session(session, codec, user, refresh_days, None)


async def log_in(
    sessionmaker: async_sessionmaker[AsyncSession],
    codec: AccessTokenCodec,
    refresh_days: int,
    *,
    passwords: PasswordHashing,
    email: str,
    password: str,
) -> IssuedSession:
    """Verify credentials. Unknown email, wrong password and deactivated account all
    produce the same message (and take the same time: an unknown email is verified against
    a dummy hash in the same pool), so log-in never reveals whether an email has an account.

    Takes the sessionmaker, not a session: two short transactions around the verification
    instead of one around it, so no pooled database connection waits while Argon2 runs
    (in a 30-way storm a verification queues for the hashing pool for seconds; holding a
    connection meanwhile made /healthz wait ~1.9 s for one). Commits the second one."""
    email = normalise_email(email)
    user_id: uuid.UUID | None = None
    stored_hash: str | None = None
    if len(email) <= 320:
        async with sessionmaker() as session:
            found = await repository.get_user_by_email(session, email)
            if found is not None:
                user_id, stored_hash = found.id, found.password_hash
    password_ok = await passwords.verify(stored_hash, password[:1024])
    if user_id is None or stored_hash is None or not password_ok:
        raise InvalidCredentialsError(INVALID_CREDENTIALS)
    new_hash = await passwords.hash(password) if needs_rehash(stored_hash) else None
    async with sessionmaker.begin() as session:
        user = await repository.get_user(session, user_id)
        # Read again: the account may have been deactivated or its password changed meanwhile.
        if user is None or not user.is_active or user.password_hash != stored_hash:
            raise InvalidCredentialsError(INVALID_CREDENTIALS)
        if new_hash is not None:
            user.password_hash = new_hash
        user.last_login_at = datetime.now(UTC)
        return await _issue_session(session, codec, user, refresh_days, None)


async def rotate_refresh_token(
    session: AsyncSession, codec: AccessTokenCodec, refresh_days: int, *, refresh_token: str
) -> IssuedSession:
    """Exchange a refresh token for a new pair. A token is single-use: presenting one that
    was already rotated means it leaked, so its whole family is revoked."""
    invalid = InvalidRefreshTokenError("The refresh token is invalid or expired; log in again.")
    if not refresh_token or len(refresh_token) > 200:
        raise invalid
    stored = await repository.get_refresh_token_for_update(session, hash_refresh_token(refresh_token))
    if stored is None:
        raise invalid
    now = datetime.now(UTC)
    if stored.used_at is not None or stored.revoked_at is not None:
        logger.warning("refresh token reuse detected; revoking family %s", stored.family_id)
        await repository.revoke_family(session, stored.family_id)
        # The revocation must persist even though this request fails.
        raise InvalidRefreshTokenError("The refresh token was already used; log in again.")
    if stored.expires_at <= now:
        raise invalid
    user = await repository.get_user(session, stored.user_id)
    if user is None or not user.is_active:
        raise invalid
    stored.used_at = now
    return await _issue_session(session, codec, user, refresh_days, stored.family_id)


async def log_out(session: AsyncSession, *, refresh_token: str | None, user: User | None) -> None:
    if refresh_token:
        stored = await repository.get_refresh_token_for_update(session, hash_refresh_token(refresh_token))
        if stored is not None and (user is None or stored.user_id == user.id):
            await repository.revoke_family(session, stored.family_id)


async def authenticate_access_token(
    session: AsyncSession, codec: AccessTokenCodec, token: str
) -> tuple[User | None, str | None]:
    """Return (user, None) or (None, reason). The user row is read on every request, so a
    deactivation or password change takes effect at once."""
    try:
        claims = codec.decode(token)
    except InvalidToken as error:
        return None, error.reason
    user = await repository.get_user(session, claims.user_id)
    if user is None or user.token_version != claims.token_version:
        return None, "The access token is no longer valid; log in again."
    if not user.is_active:
        return None, "This account is deactivated."
    return user, None


async def ensure_superadmin(
    session: AsyncSession, email: str, password: str | None, passwords: PasswordHashing | None = None
) -> str | None:
    """Create the superadmin when none exists. Returns a generated password to print once
    (None when one was configured or the superadmin already exists).

    The server and the CLI pass their hashing pool; without one (a script or test set-up
    that has none) the one hash runs in a worker thread, still off the event loop."""
    if await repository.get_superadmin(session) is not None:
        return None
    email = normalise_email(email)
    generated = None
    if not password:
        generated = secrets.token_urlsafe(15) + "-1"
        password = generated
    if passwords is not None:
        password_hash = await passwords.hash(password)
    else:
        password_hash = await asyncio.to_thread(hash_password, password)
    existing = await repository.get_user_by_email(session, email)
    if existing is not None:
        existing.role = Role.SUPERADMIN
        existing.is_active = True
        existing.password_hash = password_hash
    else:
        session.add(
            User(
                email=email,
                display_name="Superadmin",
                password_hash=password_hash,
                role=Role.SUPERADMIN,
            )
        )
    await session.flush()
    return generated


async def configured_superadmin_password_differs(
    session: AsyncSession, password: str, passwords: PasswordHashing
) -> bool:
    """SUPERADMIN_PASSWORD applies only when the superadmin is created; a later, different
    value is ignored (changing a password is `ragql set-password`'s job, which also signs
    the account out). True when it is set and the stored superadmin's hash does not match."""
    superadmin = await repository.get_superadmin(session)
    if superadmin is None:
        return False
    return not await passwords.verify(superadmin.password_hash, password[:1024])
