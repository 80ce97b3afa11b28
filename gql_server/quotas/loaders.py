"""Per-request dataloaders for the quota fields of User and AccessGroup: one statement per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from gql_server.context import Context
from gql_server.quotas import repository
from gql_server.quotas.service import QuotaValues


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
