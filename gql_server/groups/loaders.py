"""Per-request dataloaders for access groups."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from gql_server.context import Context
from gql_server.db.models import AccessGroup, User
from gql_server.groups import repository


def member_count(context: Context) -> DataLoader[uuid.UUID, int]:
    async def load(ids: Sequence[uuid.UUID]) -> list[int]:
        async with context.sessionmaker() as session:
            counts = await repository.member_counts(session, ids)
        return [counts.get(group_id, 0) for group_id in ids]

    return DataLoader(load_fn=load)


def members(context: Context) -> DataLoader[uuid.UUID, list[User]]:
    async def load(ids: Sequence[uuid.UUID]) -> list[list[User]]:
        grouped: dict[uuid.UUID, list[User]] = defaultdict(list)
        async with context.sessionmaker() as session:
            for group_id, user in await repository.members_of_groups(session, ids):
                grouped[group_id].append(user)
        return [grouped.get(group_id, []) for group_id in ids]

    return DataLoader(load_fn=load)


def group_by_id(context: Context) -> DataLoader[uuid.UUID, AccessGroup | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[AccessGroup | None]:
        async with context.sessionmaker() as session:
            rows = {group.id: group for group in await repository.groups_by_ids(session, ids)}
        return [rows.get(group_id) for group_id in ids]

    return DataLoader(load_fn=load)
