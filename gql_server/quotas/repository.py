"""All SQL of usage quotas: the limits of users and groups, and the per-day usage counters."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.db.models import GroupMembership, UsageCounter, UsageLimit, User


@dataclass(frozen=True)
class UsedSoFar:
    messages_today: int = 0
    prompt_tokens_today: int = 0
    completion_tokens_today: int = 0
    tokens_this_month: int = 0

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


async def used_so_far(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], day: date, month_start: date
) -> dict[uuid.UUID, UsedSoFar]:
    """Today's messages and tokens and this month's tokens, per user, in one statement."""
    today = UsageCounter.day == day
    tokens = UsageCounter.prompt_tokens + UsageCounter.completion_tokens
    rows = await session.execute(
        select(
            UsageCounter.user_id,
            func.coalesce(func.sum(UsageCounter.messages).filter(today), 0),
            func.coalesce(func.sum(UsageCounter.prompt_tokens).filter(today), 0),
            func.coalesce(func.sum(UsageCounter.completion_tokens).filter(today), 0),
            func.coalesce(func.sum(tokens), 0),
        )
        .where(
            UsageCounter.user_id.in_(list(user_ids)), UsageCounter.day >= month_start, UsageCounter.day <= day
        )
        .group_by(UsageCounter.user_id)
    )
    return {
        user_id: UsedSoFar(int(messages), int(prompt), int(completion), int(month))
        for user_id, messages, prompt, completion, month in rows
    }


async def daily_counters(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], first_day: date, last_day: date
) -> list[UsageCounter]:
    """The users' counters of the days from `first_day` to `last_day` (days without use have none)."""
    rows = await session.scalars(
        select(UsageCounter).where(
            UsageCounter.user_id.in_(list(user_ids)),
            UsageCounter.day >= first_day,
            UsageCounter.day <= last_day,
        )
    )
    return list(rows)


async def count_message(session: AsyncSession, user_id: uuid.UUID, day: date) -> None:
    statement = insert(UsageCounter).values(user_id=user_id, day=day, messages=1)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[UsageCounter.user_id, UsageCounter.day],
            set_={"messages": UsageCounter.messages + 1},
        )
    )


async def count_tokens(
    session: AsyncSession, user_id: uuid.UUID, day: date, prompt_tokens: int, completion_tokens: int
) -> None:
    """Add an answer's tokens atomically (no lock: concurrent additions add up)."""
    statement = insert(UsageCounter).values(
        user_id=user_id, day=day, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[UsageCounter.user_id, UsageCounter.day],
            set_={
                "prompt_tokens": UsageCounter.prompt_tokens + statement.excluded.prompt_tokens,
                "completion_tokens": UsageCounter.completion_tokens + statement.excluded.completion_tokens,
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
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(User.email.ilike(pattern), User.display_name.ilike(pattern)))
    total = await session.scalar(select(func.count()).select_from(User).where(*conditions))
    rows = await session.scalars(
        select(User).where(*conditions).order_by(func.lower(User.email), User.id).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)
