"""OIDC log-in: the account an identity signs in as, group and role sync, one-time codes.

The rules, decided here once:
- an identity is its (issuer, subject); a known one signs in as its linked account, whatever
  email the IdP sends today;
- an unknown identity whose email belongs to an existing account is linked to it only when
  OIDC_LINK_BY_EMAIL is on *and* the IdP says the email is verified; otherwise refused —
  never linked by email alone;
- an unknown identity with a new email gets an account when OIDC_AUTO_CREATE_USERS is on
  (its password is random and never shown, so only OIDC signs it in);
- a deactivated account never gets in;
- at every log-in the memberships of groups with an externalName follow the groups claim
  (groups/service.py `sync_external_memberships`), and with OIDC_ADMIN_GROUPS set the
  admin role follows membership of those groups; the superadmin's role is never touched.
Everything happens in the caller's one transaction: a refusal rolls it all back.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.audit import service as audit
from gql_server.auth import repository as auth_repository
from gql_server.auth.passwords import PasswordHashing
from gql_server.auth.service import IssuedSession, _issue_session, email_problem, normalise_email
from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.models import LoginCode, Role, User, UserIdentity
from gql_server.exceptions import InvalidLoginCodeError, OidcLoginRefusedError
from gql_server.groups import service as groups_service
from gql_server.oidc import repository
from gql_server.users import repository as users_repository

logger = logging.getLogger(__name__)

LOGIN_CODE_SECONDS = 60
_MAX_CODE_LENGTH = 200


@dataclass(frozen=True)
class OidcPolicy:
    """The settings the rules above depend on."""

    groups_claim: str
    admin_groups: frozenset[str]
    auto_create_users: bool
    link_by_email: bool


@dataclass(frozen=True)
class OidcIdentity:
    """What a verified ID token (and userinfo) says about the person."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class OidcSignIn:
    user_id: uuid.UUID
    # The one-time code for the SPA (only its hash is stored).
    code: str
    # Access that narrowed, for the resolvers' AccessChanged events after the commit.
    removed_group_ids: tuple[uuid.UUID, ...]
    demoted: bool
    # Access that widened: the user's other open pages refresh their model list (visibleModels).
    added_group_ids: tuple[uuid.UUID, ...] = ()
    promoted: bool = False


def read_identity(issuer: str, claims: Mapping[str, Any], groups_claim: str) -> OidcIdentity:
    """The identity in the verified claims; refuses a missing subject or a malformed groups
    claim. A missing groups claim means no groups (memberships are removed, never kept open)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise OidcLoginRefusedError("invalid_token", "The identity provider sent no usable subject.")
    groups = claims.get(groups_claim)
    if groups is None:
        logger.warning(
            "OIDC log-in: the claim %r is missing; the user is treated as in no IdP group", groups_claim
        )
        groups = []
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise OidcLoginRefusedError(
            "groups_claim_invalid",
            f"The identity provider's '{groups_claim}' claim is not a list of group names.",
        )
    email = claims.get("email")
    email = normalise_email(email) if isinstance(email, str) and email.strip() else None
    if email is not None and email_problem(email):
        email = None
    name = next(
        (
            value.strip()
            for key in ("name", "preferred_username")
            if isinstance(value := claims.get(key), str)
        ),
        "",
    )
    return OidcIdentity(
        issuer=issuer,
        subject=subject,
        email=email,
        email_verified=claims.get("email_verified") is True,
        name=name[:120],
        groups=tuple(groups),
    )


def hash_login_code(code: str) -> str:
    # 256 random bits: a fast hash is enough (as for refresh tokens).
    return hashlib.sha256(code.encode()).hexdigest()


async def _account_for(
    session: AsyncSession, passwords: PasswordHashing, policy: OidcPolicy, identity: OidcIdentity
) -> User:
    linked = await repository.get_identity(session, identity.issuer, identity.subject)
    if linked is not None:
        user = await users_repository.get_user_for_update(session, linked.user_id)
        assert user is not None  # the identity row cascades with its user
        linked.last_login_at = datetime.now(UTC)
        return user
    if identity.email is None:
        raise OidcLoginRefusedError(
            "email_missing", "The identity provider sent no email address for this account."
        )
    existing = await auth_repository.get_user_by_email(session, identity.email)
    if existing is not None:
        if not (policy.link_by_email and identity.email_verified):
            raise OidcLoginRefusedError(
                "account_exists",
                "An account with this email already exists here; an administrator must allow linking it.",
            )
        user = await users_repository.get_user_for_update(session, existing.id)
        assert user is not None
        if await repository.identity_of_user(session, user.id, identity.issuer) is not None:
            # Already linked to another subject of this IdP: an email moved between people.
            raise OidcLoginRefusedError(
                "account_exists", "This account is linked to another identity at the identity provider."
            )
        await audit.record(session, user, "user.oidc_link", "user", user.id, {"issuer": identity.issuer})
    else:
        if not policy.auto_create_users:
            raise OidcLoginRefusedError(
                "auto_create_disabled", "There is no account for you here yet; ask an administrator."
            )
        # A random password nobody knows: the account signs in through OIDC only, and a
        # password log-in with its email costs the same Argon2 time as any other.
        password_hash = await passwords.hash(secrets.token_urlsafe(32))
        user = User(
            email=identity.email,
            display_name=identity.name or identity.email.split("@")[0],
            password_hash=password_hash,
        )
        session.add(user)
        await session.flush()
        await audit.record(session, user, "user.oidc_create", "user", user.id, {"issuer": identity.issuer})
    session.add(
        UserIdentity(
            user_id=user.id,
            issuer=identity.issuer,
            subject=identity.subject,
            last_login_at=datetime.now(UTC),
        )
    )
    return user


async def _sync_role(session: AsyncSession, user: User, policy: OidcPolicy, groups: tuple[str, ...]) -> bool:
    """Admin role from OIDC_ADMIN_GROUPS; True when the user was demoted."""
    if not policy.admin_groups or user.role is Role.SUPERADMIN:
        return False
    in_admin_group = not policy.admin_groups.isdisjoint(groups)
    if in_admin_group and user.role is Role.USER:
        user.role = Role.ADMIN
        await audit.record(
            session, user, "user.promote", "user", user.id, {"role": "ADMIN", "source": "oidc"}
        )
    elif not in_admin_group and user.role is Role.ADMIN:
        user.role = Role.USER
        await audit.record(session, user, "user.demote", "user", user.id, {"role": "USER", "source": "oidc"})
        return True
    return False


async def sign_in(
    session: AsyncSession, passwords: PasswordHashing, policy: OidcPolicy, identity: OidcIdentity
) -> OidcSignIn:
    """Find, link or create the account, sync its groups and role, and issue the one-time
    code the SPA exchanges (exchangeLoginCode). Never commits."""
    try:
        async with session.begin_nested():
            user = await _account_for(session, passwords, policy, identity)
            await session.flush()
    except IntegrityError as error:  # a concurrent first log-in of the same identity or email
        raise OidcLoginRefusedError("try_again", "Signing in did not complete; please try again.") from error
    if not user.is_active:
        raise OidcLoginRefusedError("account_deactivated", "This account is deactivated.")
    memberships = await groups_service.sync_external_memberships(session, user, identity.groups)
    role_before = user.role
    demoted = await _sync_role(session, user, policy, identity.groups)
    now = datetime.now(UTC)
    user.last_login_at = now
    await repository.delete_expired_codes(session, now)
    code = secrets.token_urlsafe(32)
    session.add(
        LoginCode(
            code_hash=hash_login_code(code),
            user_id=user.id,
            expires_at=now + timedelta(seconds=LOGIN_CODE_SECONDS),
        )
    )
    await session.flush()
    return OidcSignIn(
        user_id=user.id,
        code=code,
        removed_group_ids=tuple(memberships.removed),
        demoted=demoted,
        added_group_ids=tuple(memberships.added),
        promoted=role_before is Role.USER and user.role is Role.ADMIN,
    )


async def exchange_login_code(
    session: AsyncSession, codec: AccessTokenCodec, refresh_days: int, *, code: str
) -> IssuedSession:
    """The session for a one-time code: works once, within LOGIN_CODE_SECONDS, for an
    account that is still active."""
    if not code or len(code) > _MAX_CODE_LENGTH:
        raise InvalidLoginCodeError()
    stored = await repository.take_code(session, hash_login_code(code))
    if stored is None or stored.expires_at <= datetime.now(UTC):
        raise InvalidLoginCodeError()
    user = await auth_repository.get_user(session, stored.user_id)
    if user is None or not user.is_active:
        raise InvalidLoginCodeError()
    return await _issue_session(session, codec, user, refresh_days, None)
