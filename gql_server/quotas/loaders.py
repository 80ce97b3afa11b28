"""Per-request dataloaders for the quota fields of User and AccessGroup: one statement per batch."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from gql_server.context import Context
from gql_server.db.models import RagModel
from gql_server.quotas import repository
from gql_server.quotas.limits import month_start
from gql_server.quotas.repository import UsedSoFar
from gql_server.quotas.service import DailyUsage, QuotaValues


def quota_of_user(context: Context) -> DataLoader[uuid.UUID, QuotaValues]:
    async def load(ids: Sequence[uuid.UUID]) -> list[QuotaValues]:
        async with context.sessionmaker() as session:
            rows = {row.user_id: row for row in await repository.limits_of_subjects(session, user_ids=ids)}
        return [QuotaValues.from_row(rows.get(user_id)) for user_id in ids]

    return DataLoader(load_fn=load)


def quota_of_group(context: Context) -> DataLoader[uuid.UUID, QuotaValues]:
    async def load(ids: Sequence[uuid.UUID]) -> list[QuotaValues]:
        async with context.sessionmaker() as session:
            rows = {row.group_id: row for row in await repository.limits_of_subjects(session, group_ids=ids)}
        return [QuotaValues.from_row(rows.get(group_id)) for group_id in ids]

    return DataLoader(load_fn=load)


DailyKey = tuple[uuid.UUID, date, date]  # (user, group or model; first day; last day)
FetchDays = Callable[[AsyncSession, list[uuid.UUID], date, date], Awaitable[list[repository.DayCounts]]]


def _daily_loader(context: Context, fetch: FetchDays) -> DataLoader[DailyKey, list[DailyUsage]]:
    """Each subject's usage per day, every day of the range (zeros where nothing was used):
    one statement for a whole page of subjects."""

    async def load(keys: Sequence[DailyKey]) -> list[list[DailyUsage]]:
        first, last = min(key[1] for key in keys), max(key[2] for key in keys)
        async with context.sessionmaker() as session:
            rows = await fetch(session, list({key[0] for key in keys}), first, last)
        by_day = {(row.subject_id, row.day): row for row in rows}
        result = []
        for subject_id, first_day, last_day in keys:
            days = []
            day = first_day
            while day <= last_day:
                row = by_day.get((subject_id, day))
                days.append(
                    DailyUsage(day, row.messages, row.prompt_tokens, row.completion_tokens)
                    if row is not None
                    else DailyUsage(day, 0, 0, 0)
                )
                day += timedelta(days=1)
            result.append(days)
        return result

    return DataLoader(load_fn=load)


def daily_usage(context: Context) -> DataLoader[DailyKey, list[DailyUsage]]:
    return _daily_loader(context, repository.daily_counters)


def daily_usage_of_groups(context: Context) -> DataLoader[DailyKey, list[DailyUsage]]:
    return _daily_loader(context, repository.daily_counters_of_groups)


def daily_usage_of_models(context: Context) -> DataLoader[DailyKey, list[DailyUsage]]:
    return _daily_loader(context, repository.daily_counters_of_models)


ModelsKey = tuple[uuid.UUID, date]  # (user, today)


def usage_by_model_of_users(context: Context) -> DataLoader[ModelsKey, list[tuple[RagModel, UsedSoFar]]]:
    """Each user's usage per model this month, the models the signed-in viewer may read: one
    statement for a whole page of users."""

    async def load(keys: Sequence[ModelsKey]) -> list[list[tuple[RagModel, UsedSoFar]]]:
        viewer = context.require_user()
        result: list[list[tuple[RagModel, UsedSoFar]]] = []
        async with context.sessionmaker() as session:
            by_day: dict[date, dict[uuid.UUID, list[tuple[RagModel, UsedSoFar]]]] = {}
            for day in {key[1] for key in keys}:
                users = [key[0] for key in keys if key[1] == day]
                by_day[day] = await repository.used_so_far_by_users_and_models(
                    session, viewer, users, day, month_start(day)
                )
        for user_id, day in keys:
            result.append(by_day[day].get(user_id, []))
        return result

    return DataLoader(load_fn=load)
