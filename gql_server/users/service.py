"""Account administration and self-service. Services never commit.

Role rules, decided here once:
- admins promote USER -> ADMIN, deactivate and reactivate plain users;
- only the superadmin demotes, deactivates or reactivates admins;
- nobody demotes or deactivates the superadmin, and nobody deactivates themselves.
Deactivation bumps `token_version` (access tokens die at once) and revokes refresh tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.access.policy import is_superadmin
from gql_server.audit import service as audit
from gql_server.auth import repository as auth_repository
from gql_server.auth.passwords import PasswordHashing, password_problem
from gql_server.auth.service import IssuedSession, _issue_session
from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.models import Role, User
from gql_server.exceptions import ForbiddenError, InvalidInputError, NotFoundError
from gql_server.users import repository
from gql_server.users.repository import UserOrder

DISPLAY_NAME_MAX = 120


async def list_users(
    session: AsyncSession,
    *,
    search: str | None,
    role: Role | None,
    is_active: bool | None,
    order: UserOrder,
    limit: int,
    offset: int,
) -> tuple[Sequence[User], int]:
    return await repository.list_users(
        session, search=search, role=role, is_active=is_active, order=order, limit=limit, offset=offset
    )


async def _target(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await repository.get_user_for_update(session, user_id)
    if user is None:
        raise NotFoundError.of("The user")
    return user


async def promote_to_admin(session: AsyncSession, actor: User, user_id: uuid.UUID) -> User:
    target = await _target(session, user_id)
    if target.role is Role.SUPERADMIN:
        raise ForbiddenError("The superadmin's role cannot be changed.")
    if not target.is_active:
        raise InvalidInputError.of("userId", "Reactivate this account before making it an administrator.")
    if target.role is Role.USER:
        target.role = Role.ADMIN
        await audit.record(session, actor, "user.promote", "user", target.id, {"role": "ADMIN"})
    return target


async def demote_to_user(session: AsyncSession, actor: User, user_id: uuid.UUID) -> User:
    target = await _target(session, user_id)
    if target.role is Role.SUPERADMIN:
        raise ForbiddenError("The superadmin cannot be demoted.")
    if target.role is Role.ADMIN:
        if not is_superadmin(actor):
            raise ForbiddenError("Only the superadmin can demote an administrator.")
        target.role = Role.USER
        await audit.record(session, actor, "user.demote", "user", target.id, {"role": "USER"})
    return target


def _check_may_change_activation(actor: User, target: User, verb: str) -> None:
    if target.role is Role.SUPERADMIN:
        raise ForbiddenError(f"The superadmin cannot be {verb}d.")
    if target.id == actor.id:
        raise ForbiddenError(f"You cannot {verb} your own account.")
    if target.role is Role.ADMIN and not is_superadmin(actor):
        raise ForbiddenError(f"Only the superadmin can {verb} an administrator.")


async def deactivate(session: AsyncSession, actor: User, user_id: uuid.UUID) -> User:
    target = await _target(session, user_id)
    _check_may_change_activation(actor, target, "deactivate")
    if target.is_active:
        target.is_active = False
        target.token_version += 1
        await auth_repository.revoke_all_for_user(session, target.id)
        await audit.record(session, actor, "user.deactivate", "user", target.id)
    return target


async def reactivate(session: AsyncSession, actor: User, user_id: uuid.UUID) -> User:
    target = await _target(session, user_id)
    _check_may_change_activation(actor, target, "reactivate")
    if not target.is_active:
        target.is_active = True
        await audit.record(session, actor, "user.reactivate", "user", target.id)
    return target


async def update_profile(session: AsyncSession, user: User, display_name: str | None) -> User:
    target = await _target(session, user.id)
    if display_name is not None:
        name = display_name.strip()
        if not name:
            raise InvalidInputError.of("displayName", "The display name must not be empty.")
        if len(name) > DISPLAY_NAME_MAX:
            raise InvalidInputError.of(
                "displayName", f"The display name can have at most {DISPLAY_NAME_MAX} characters."
            )
        target.display_name = name
    return target


async def change_password(
    session: AsyncSession,
    codec: AccessTokenCodec,
    refresh_days: int,
    user: User,
    *,
    passwords: PasswordHashing,
    old_password: str,
    new_password: str,
) -> IssuedSession:
    """Every other session of the user ends: refresh tokens revoked, token version bumped.
    Argon2 runs in the app's hashing pool (`passwords`), off the event loop."""
    target = await _target(session, user.id)
    if not await passwords.verify(target.password_hash, old_password[:1024]):
        raise InvalidInputError.of("oldPassword", "The current password is incorrect.")
    if problem := password_problem(new_password, target.email):
        raise InvalidInputError.of("newPassword", problem)
    if new_password == old_password:
        raise InvalidInputError.of("newPassword", "The new password must differ from the current one.")
    target.password_hash = await passwords.hash(new_password)
    target.token_version += 1
    await auth_repository.revoke_all_for_user(session, target.id)
    await session.flush()
    return await _issue_session(session, codec, target, refresh_days, None)


async def set_password(
    session: AsyncSession, passwords: PasswordHashing, email: str, new_password: str
) -> User:
    """An operator sets an account's password from the command line (`ragql set-password`):
    the way back in for a superadmin whose generated password was lost, and for anyone
    when no administrator can reset it. Every session of the account ends, as with
    changePassword."""
    found = await auth_repository.get_user_by_email(session, email.strip())
    if found is None:
        raise NotFoundError(f"No account has the email {email.strip()!r}.")
    target = await _target(session, found.id)
    if problem := password_problem(new_password, target.email):
        raise InvalidInputError.of("password", problem)
    target.password_hash = await passwords.hash(new_password)
    target.token_version += 1
    await auth_repository.revoke_all_for_user(session, target.id)
    # Nobody signed in did this: the account itself is recorded as the actor, marked as the CLI.
    await audit.record(session, target, "user.set_password", "user", target.id, {"via": "cli"})
    await session.flush()
    return target
