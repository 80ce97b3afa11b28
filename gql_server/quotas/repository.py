"""All SQL of usage quotas: the limits of users and groups, and the per-day usage counters
(per user, and per user and model; a group's usage is its current members')."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.access.policy import model_is_readable
from gql_server.db.models import (
    GroupMembership,
    RagModel,
    UsageCounter,
    UsageLimit,
    UsageModelCounter,
    User,
)
from gql_server.kit.pagination import escape_like


@dataclass(frozen=True)
class UsedSoFar:
    messages_today: int = 0
    prompt_tokens_today: int = 0
    completion_tokens_today: int = 0
    tokens_this_month: int = 0
    messages_this_month: int = 0

    @property
    def tokens_today(self) -> int:
        return self.prompt_tokens_today + self.completion_tokens_today


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The user's row lock (the one chat's sends take): a user's quota checks and message
    reservations run one after the other across every API process."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def limit_of_user(
    session: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False
) -> UsageLimit | None:
    query = select(UsageLimit).where(UsageLimit.user_id == user_id)
    return await session.scalar(query.with_for_update() if for_update else query)


async def limit_of_group(
    session: AsyncSession, group_id: uuid.UUID, *, for_update: bool = False
) -> UsageLimit | None:
    query = select(UsageLimit).where(UsageLimit.group_id == group_id)
    return await session.scalar(query.with_for_update() if for_update else query)


async def limits_of_subjects(
    session: AsyncSession, user_ids: Sequence[uuid.UUID] = (), group_ids: Sequence[uuid.UUID] = ()
) -> list[UsageLimit]:
    if not user_ids and not group_ids:
        return []
    rows = await session.scalars(
        select(UsageLimit).where(
            or_(UsageLimit.user_id.in_(list(user_ids)), UsageLimit.group_id.in_(list(group_ids)))
        )
    )
    return list(rows)


async def create_limit(
    session: AsyncSession, *, user_id: uuid.UUID | None = None, group_id: uuid.UUID | None = None
) -> UsageLimit:
    """The subject's row, created if missing (concurrent creators: one insert wins, both get it)."""
    await session.execute(
        insert(UsageLimit)
        .values(id=uuid.uuid4(), user_id=user_id, group_id=group_id)
        .on_conflict_do_nothing()
    )
    if user_id is not None:
        row = await limit_of_user(session, user_id, for_update=True)
    else:
        assert group_id is not None
        row = await limit_of_group(session, group_id, for_update=True)
    assert row is not None
    return row


async def group_limits_of_users(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[UsageLimit]]:
    """The quotas of each user's groups (groups without a quota are left out)."""
    rows = await session.execute(
        select(GroupMembership.user_id, UsageLimit)
        .join(UsageLimit, UsageLimit.group_id == GroupMembership.group_id)
        .where(GroupMembership.user_id.in_(list(user_ids)))
    )
    grouped: dict[uuid.UUID, list[UsageLimit]] = defaultdict(list)
    for user_id, limit in rows:
        grouped[user_id].append(limit)
    return grouped


Counters = type[UsageCounter] | type[UsageModelCounter]


def _figures(table: Counters, day: date) -> tuple[ColumnElement[int], ...]:
    """Today's messages, prompt and completion tokens, then the range's tokens and messages."""
    today = table.day == day
    return (
        func.coalesce(func.sum(table.messages).filter(today), 0),
        func.coalesce(func.sum(table.prompt_tokens).filter(today), 0),
        func.coalesce(func.sum(table.completion_tokens).filter(today), 0),
        func.coalesce(func.sum(table.prompt_tokens + table.completion_tokens), 0),
        func.coalesce(func.sum(table.messages), 0),
    )


def _used(rows: Any) -> dict[uuid.UUID, UsedSoFar]:
    return {
        key: UsedSoFar(int(messages), int(prompt), int(completion), int(tokens), int(month_messages))
        for key, messages, prompt, completion, tokens, month_messages in rows
    }


async def used_so_far(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], day: date, month_start: date
) -> dict[uuid.UUID, UsedSoFar]:
    """Today's messages and tokens and this month's, per user, in one statement."""
    rows = await session.execute(
        select(UsageCounter.user_id, *_figures(UsageCounter, day))
        .where(
            UsageCounter.user_id.in_(list(user_ids)), UsageCounter.day >= month_start, UsageCounter.day <= day
        )
        .group_by(UsageCounter.user_id)
    )
    return _used(rows)


async def used_so_far_by_groups(
    session: AsyncSession, group_ids: Sequence[uuid.UUID], day: date, month_start: date
) -> dict[uuid.UUID, UsedSoFar]:
    """The same figures per group: the sum over the group's current members."""
    rows = await session.execute(
        select(GroupMembership.group_id, *_figures(UsageCounter, day))
        .join(UsageCounter, UsageCounter.user_id == GroupMembership.user_id)
        .where(
            GroupMembership.group_id.in_(list(group_ids)),
            UsageCounter.day >= month_start,
            UsageCounter.day <= day,
        )
        .group_by(GroupMembership.group_id)
    )
    return _used(rows)


async def used_so_far_by_models(
    session: AsyncSession, model_ids: Sequence[uuid.UUID], day: date, month_start: date
) -> dict[uuid.UUID, UsedSoFar]:
    """The same figures per model, over every user."""
    rows = await session.execute(
        select(UsageModelCounter.model_id, *_figures(UsageModelCounter, day))
        .where(
            UsageModelCounter.model_id.in_(list(model_ids)),
            UsageModelCounter.day >= month_start,
            UsageModelCounter.day <= day,
        )
        .group_by(UsageModelCounter.model_id)
    )
    return _used(rows)


async def used_so_far_by_users_and_models(
    session: AsyncSession, viewer: User, user_ids: Sequence[uuid.UUID], day: date, month_start: date
) -> dict[uuid.UUID, list[tuple[RagModel, UsedSoFar]]]:
    """Each user's figures per model they used this month, by model name — only models the
    viewer may read (an administrator: all; a user looking at their own: those still granted)."""
    rows = await session.execute(
        select(UsageModelCounter.user_id, RagModel, *_figures(UsageModelCounter, day))
        .join(RagModel, RagModel.id == UsageModelCounter.model_id)
        .where(
            UsageModelCounter.user_id.in_(list(user_ids)),
            UsageModelCounter.day >= month_start,
            UsageModelCounter.day <= day,
            model_is_readable(viewer, RagModel.id),
        )
        .group_by(UsageModelCounter.user_id, RagModel.id)
        .order_by(func.lower(RagModel.name), RagModel.id)
    )
    grouped: dict[uuid.UUID, list[tuple[RagModel, UsedSoFar]]] = defaultdict(list)
    for row in rows:
        user_id, model, *figures = row
        grouped[user_id].append((model, UsedSoFar(*(int(value) for value in figures))))
    return grouped


@dataclass(frozen=True)
class DayCounts:
    """One subject's (user's, group's or model's) figures of one day."""

    subject_id: uuid.UUID
    day: date
    messages: int
    prompt_tokens: int
    completion_tokens: int


def _day_sums(table: Counters) -> tuple[ColumnElement[int], ...]:
    return (func.sum(table.messages), func.sum(table.prompt_tokens), func.sum(table.completion_tokens))


def _days(rows: Any) -> list[DayCounts]:
    return [
        DayCounts(subject, day, int(messages), int(prompt), int(completion))
        for subject, day, messages, prompt, completion in rows
    ]


async def daily_counters(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], first_day: date, last_day: date
) -> list[DayCounts]:
    """The users' figures of the days from `first_day` to `last_day` (days without use have none)."""
    rows = await session.execute(
        select(UsageCounter.user_id, UsageCounter.day, *_day_sums(UsageCounter))
        .where(
            UsageCounter.user_id.in_(list(user_ids)),
            UsageCounter.day >= first_day,
            UsageCounter.day <= last_day,
        )
        .group_by(UsageCounter.user_id, UsageCounter.day)
    )
    return _days(rows)


async def daily_counters_of_groups(
    session: AsyncSession, group_ids: Sequence[uuid.UUID], first_day: date, last_day: date
) -> list[DayCounts]:
    """Per group and day, the sum over the group's current members."""
    rows = await session.execute(
        select(GroupMembership.group_id, UsageCounter.day, *_day_sums(UsageCounter))
        .join(UsageCounter, UsageCounter.user_id == GroupMembership.user_id)
        .where(
            GroupMembership.group_id.in_(list(group_ids)),
            UsageCounter.day >= first_day,
            UsageCounter.day <= last_day,
        )
        .group_by(GroupMembership.group_id, UsageCounter.day)
    )
    return _days(rows)


async def daily_counters_of_models(
    session: AsyncSession, model_ids: Sequence[uuid.UUID], first_day: date, last_day: date
) -> list[DayCounts]:
    rows = await session.execute(
        select(UsageModelCounter.model_id, UsageModelCounter.day, *_day_sums(UsageModelCounter))
        .where(
            UsageModelCounter.model_id.in_(list(model_ids)),
            UsageModelCounter.day >= first_day,
            UsageModelCounter.day <= last_day,
        )
        .group_by(UsageModelCounter.model_id, UsageModelCounter.day)
    )
    return _days(rows)


async def count_message(session: AsyncSession, user_id: uuid.UUID, model_id: uuid.UUID, day: date) -> None:
    """One message for the user (the quota's counter) and for the user on the model."""
    for table, keys in (
        (UsageCounter, {"user_id": user_id, "day": day}),
        (UsageModelCounter, {"model_id": model_id, "day": day, "user_id": user_id}),
    ):
        statement = insert(table).values(**keys, messages=1)
        await session.execute(
            statement.on_conflict_do_update(index_elements=list(keys), set_={"messages": table.messages + 1})
        )


async def count_tokens(
    session: AsyncSession,
    user_id: uuid.UUID,
    model_id: uuid.UUID,
    day: date,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Add an answer's tokens atomically (no lock: concurrent additions add up), to the user
    and to the user on the model. The model's row is skipped if the model was deleted while
    the answer ran (its per-model rows went with it; the user's counter stays)."""
    model_exists = await session.scalar(select(RagModel.id).where(RagModel.id == model_id)) is not None
    for table, keys in (
        (UsageCounter, {"user_id": user_id, "day": day}),
        (UsageModelCounter, {"model_id": model_id, "day": day, "user_id": user_id}),
    ):
        if table is UsageModelCounter and not model_exists:
            continue
        statement = insert(table).values(
            **keys, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=list(keys),
                set_={
                    "prompt_tokens": table.prompt_tokens + statement.excluded.prompt_tokens,
                    "completion_tokens": table.completion_tokens + statement.excluded.completion_tokens,
                },
            )
        )


async def list_users(
    session: AsyncSession, *, user_id: uuid.UUID | None, search: str | None, limit: int, offset: int
) -> tuple[list[User], int]:
    """Users for the usage view, by email."""
    conditions = []
    if user_id is not None:
        conditions.append(User.id == user_id)
    if search:
        pattern = f"%{escape_like(search)}%"
        conditions.append(or_(User.email.ilike(pattern), User.display_name.ilike(pattern)))
    total = await session.scalar(select(func.count()).select_from(User).where(*conditions))
    rows = await session.scalars(
        select(User).where(*conditions).order_by(func.lower(User.email), User.id).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)


async def list_models(
    session: AsyncSession, *, model_id: uuid.UUID | None, limit: int, offset: int
) -> tuple[list[RagModel], int]:
    """Models for the usage view, by name."""
    conditions = [RagModel.id == model_id] if model_id is not None else []
    total = await session.scalar(select(func.count()).select_from(RagModel).where(*conditions))
    rows = await session.scalars(
        select(RagModel)
        .where(*conditions)
        .order_by(func.lower(RagModel.name), RagModel.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)
