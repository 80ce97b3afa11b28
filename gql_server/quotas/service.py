"""Usage quotas: admins set them per user and per access group; sendMessage and
regenerateMessage reserve a message under them; finished answers add their tokens.

How the levels combine is gql_server/quotas/limits.py's docstring. The check and the
reservation run in the caller's transaction, the one that stores the question, under the
user's row lock (`repository.lock_user`, the lock chat's sends take anyway): a user's
requests — in this process or another — are checked one after the other, each seeing the
messages the previous ones counted, so concurrent sends never overshoot a message limit.
Tokens are known only once an answer ends, so a token limit is checked against the tokens
already used: with one answer in flight per user, a user overshoots a token limit by at
most one answer. Services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.audit import service as audit
from gql_server.db.base import utcnow
from gql_server.db.models import QUOTA_UNLIMITED, AccessGroup, RagModel, UsageLimit, User
from gql_server.exceptions import InvalidInputError, NotFoundError, UsageQuotaExceededError
from gql_server.groups import repository as groups_repository
from gql_server.quotas import repository
from gql_server.quotas.limits import (
    COLUMNS,
    MAX_LIMIT,
    EffectiveLimit,
    QuotaKind,
    QuotaSource,
    day_resets_at,
    effective_limit,
    month_resets_at,
    month_start,
    resets_at,
    utc_day,
)
from gql_server.quotas.repository import UsedSoFar
from gql_server.settings import Settings

SubjectT = TypeVar("SubjectT", User, AccessGroup)

FIELD_NAMES = {
    QuotaKind.MESSAGES_PER_DAY: "messagesPerDay",
    QuotaKind.TOKENS_PER_DAY: "tokensPerDay",
    QuotaKind.TOKENS_PER_MONTH: "tokensPerMonth",
}


@dataclass(frozen=True)
class QuotaValues:
    """One level's quota as an admin sets it: per kind a limit, UNLIMITED (listed in
    `unlimited`), or neither (None: not set at this level)."""

    messages_per_day: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    unlimited: frozenset[QuotaKind] = frozenset()

    def value(self, kind: QuotaKind) -> int | None:
        return getattr(self, COLUMNS[kind])  # type: ignore[no-any-return]

    @classmethod
    def from_row(cls, row: UsageLimit | None) -> QuotaValues:
        if row is None:
            return cls()
        stored = {kind: getattr(row, column) for kind, column in COLUMNS.items()}
        return cls(
            **{
                COLUMNS[kind]: (None if value == QUOTA_UNLIMITED else value) for kind, value in stored.items()
            },
            unlimited=frozenset(kind for kind, value in stored.items() if value == QUOTA_UNLIMITED),
        )


@dataclass(frozen=True)
class LimitStatus:
    kind: QuotaKind
    limit: int | None
    source: QuotaSource
    used: int
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


@dataclass(frozen=True)
class DailyUsage:
    day: date
    messages: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class UsageSummary:
    user: User
    day: date
    used: UsedSoFar
    day_resets_at: datetime
    month_resets_at: datetime
    limits: list[LimitStatus] = field(default_factory=list)


def _stored(values: QuotaValues, kind: QuotaKind) -> int | None:
    return QUOTA_UNLIMITED if kind in values.unlimited else values.value(kind)


def validate(values: QuotaValues) -> None:
    problems: list[tuple[str, str]] = []
    for kind, name in FIELD_NAMES.items():
        value = values.value(kind)
        if value is None:
            continue
        if value < 0:
            problems.append((name, f"{name} must be 0 or more (leave it empty for no limit at this level)."))
        elif value > MAX_LIMIT:
            problems.append((name, f"{name} can be at most {MAX_LIMIT:,}."))
        elif kind in values.unlimited:
            problems.append((name, f"{name} is both a number and listed as unlimited: choose one."))
    if problems:
        raise InvalidInputError(problems)


def _details(values: QuotaValues) -> dict[str, Any]:
    return {
        FIELD_NAMES[kind]: ("unlimited" if kind in values.unlimited else values.value(kind))
        for kind in QuotaKind
    }


async def _apply(session: AsyncSession, row: UsageLimit, values: QuotaValues) -> None:
    for kind, column in COLUMNS.items():
        setattr(row, column, _stored(values, kind))
    row.updated_at = utcnow()
    await session.flush()


async def set_user_quota(session: AsyncSession, actor: User, user_id: uuid.UUID, values: QuotaValues) -> User:
    return await _set_quota(session, actor, values, User, "user", user_id)


async def set_group_quota(
    session: AsyncSession, actor: User, group_id: uuid.UUID, values: QuotaValues
) -> AccessGroup:
    return await _set_quota(session, actor, values, AccessGroup, "group", group_id)


async def _set_quota(
    session: AsyncSession,
    actor: User,
    values: QuotaValues,
    subject_type: type[SubjectT],
    subject: Literal["user", "group"],
    subject_id: uuid.UUID,
) -> SubjectT:
    """Replace a user's or a group's whole quota (validated first; audit-logged)."""
    validate(values)
    found = await session.get(subject_type, subject_id)
    if found is None:
        raise NotFoundError(f"{subject.capitalize()} not found.")
    if subject == "user":
        row = await repository.create_limit(session, user_id=subject_id)
    else:
        row = await repository.create_limit(session, group_id=subject_id)
    await _apply(session, row, values)
    await audit.record(session, actor, f"{subject}.set_quota", subject, subject_id, _details(values))
    return found


async def effective_limits(
    session: AsyncSession, settings: Settings, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[QuotaKind, EffectiveLimit]]:
    """Each user's effective limits (two statements for any number of users)."""
    own = {row.user_id: row for row in await repository.limits_of_subjects(session, user_ids=user_ids)}
    of_groups = await repository.group_limits_of_users(session, user_ids)
    defaults = {
        QuotaKind.MESSAGES_PER_DAY: settings.quota_default_messages_per_day,
        QuotaKind.TOKENS_PER_DAY: settings.quota_default_tokens_per_day,
        QuotaKind.TOKENS_PER_MONTH: settings.quota_default_tokens_per_month,
    }
    result: dict[uuid.UUID, dict[QuotaKind, EffectiveLimit]] = {}
    for user_id in user_ids:
        row = own.get(user_id)
        groups = of_groups.get(user_id, [])
        result[user_id] = {
            kind: effective_limit(
                kind,
                getattr(row, column) if row is not None else None,
                [getattr(group, column) for group in groups],
                defaults[kind],
            )
            for kind, column in COLUMNS.items()
        }
    return result


def _used(kind: QuotaKind, used: UsedSoFar) -> int:
    if kind is QuotaKind.MESSAGES_PER_DAY:
        return used.messages_today
    if kind is QuotaKind.TOKENS_PER_DAY:
        return used.tokens_today
    return used.tokens_this_month


async def summaries(
    session: AsyncSession, settings: Settings, users: Sequence[User], now: datetime | None = None
) -> list[UsageSummary]:
    now = now or utcnow()
    day = utc_day(now)
    ids = [user.id for user in users]
    limits = await effective_limits(session, settings, ids)
    used = await repository.used_so_far(session, ids, day, month_start(day))
    result = []
    for user in users:
        so_far = used.get(user.id, UsedSoFar())
        result.append(
            UsageSummary(
                user=user,
                day=day,
                used=so_far,
                day_resets_at=day_resets_at(now),
                month_resets_at=month_resets_at(now),
                limits=[
                    LimitStatus(kind, limit.limit, limit.source, _used(kind, so_far), resets_at(kind, now))
                    for kind, limit in limits[user.id].items()
                ],
            )
        )
    return result


async def usage_page(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID | None,
    search: str | None,
    limit: int,
    offset: int,
) -> tuple[list[UsageSummary], int]:
    users, total = await repository.list_users(
        session, user_id=user_id, search=search, limit=limit, offset=offset
    )
    return await summaries(session, settings, users), total


async def reserve_message(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    model_id: uuid.UUID,
    now: datetime | None = None,
) -> None:
    """Count one message for the user today (and for the user on `model_id`), or raise UsageQuotaExceededError (nothing counted).

    Call inside the transaction that stores the message: the row lock taken here is held
    until it ends, so the next request of this user sees this message counted (or, on a
    rollback, not)."""
    now = now or utcnow()
    day = utc_day(now)
    await repository.lock_user(session, user_id)
    limits = (await effective_limits(session, settings, [user_id]))[user_id]
    so_far = (await repository.used_so_far(session, [user_id], day, month_start(day))).get(
        user_id, UsedSoFar()
    )
    for kind, limit in limits.items():
        used = _used(kind, so_far)
        if limit.limit is not None and used >= limit.limit:
            raise UsageQuotaExceededError(kind.value, limit.limit, used, resets_at(kind, now))
    await repository.count_message(session, user_id, model_id, day)


def answer_tokens(usage: dict[str, Any] | None) -> tuple[int, int]:
    """(prompt, completion) tokens of a finished answer, as the provider reported them;
    a count it did not report is 0 (the extractive answerer reports none)."""
    if not usage:
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


async def record_answer_tokens(
    session: AsyncSession,
    user_id: uuid.UUID,
    model_id: uuid.UUID,
    usage: dict[str, Any] | None,
    now: datetime | None = None,
) -> None:
    """Add a finished answer's tokens to the user's counters (and the model's) of the day it
    finished (UTC)."""
    prompt, completion = answer_tokens(usage)
    if prompt or completion:
        await repository.count_tokens(
            session, user_id, model_id, utc_day(now or utcnow()), prompt, completion
        )


@dataclass
class GroupUsage:
    """A group's usage: the sum over its current members (someone who left takes their usage
    along; someone who joined brings theirs)."""

    group: AccessGroup
    member_count: int
    day: date
    used: UsedSoFar


@dataclass
class ModelUsage:
    model: RagModel
    day: date
    used: UsedSoFar


async def group_usage_page(
    session: AsyncSession,
    *,
    group_id: uuid.UUID | None,
    limit: int,
    offset: int,
    now: datetime | None = None,
) -> tuple[list[GroupUsage], int]:
    day = utc_day(now or utcnow())
    groups, total = await groups_repository.list_groups(
        session, search=None, group_id=group_id, limit=limit, offset=offset
    )
    ids = [group.id for group in groups]
    used = await repository.used_so_far_by_groups(session, ids, day, month_start(day))
    members = await groups_repository.member_counts(session, ids)
    return [
        GroupUsage(group, members.get(group.id, 0), day, used.get(group.id, UsedSoFar())) for group in groups
    ], total


async def model_usage_page(
    session: AsyncSession,
    *,
    model_id: uuid.UUID | None,
    limit: int,
    offset: int,
    now: datetime | None = None,
) -> tuple[list[ModelUsage], int]:
    day = utc_day(now or utcnow())
    models, total = await repository.list_models(session, model_id=model_id, limit=limit, offset=offset)
    used = await repository.used_so_far_by_models(
        session, [model.id for model in models], day, month_start(day)
    )
    return [ModelUsage(model, day, used.get(model.id, UsedSoFar())) for model in models], total
