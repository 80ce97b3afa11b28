"""Per-request dataloaders for users: one SQL statement per batch, whatever the page size."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from gql_server.context import Context
from gql_server.db.models import AccessGroup, User
from gql_server.users import repository


def user_by_id(context: Context) -> DataLoader[uuid.UUID, User | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[User | None]:
        async with context.sessionmaker() as session:
            rows = {user.id: user for user in await repository.users_by_ids(session, ids)}
        return [rows.get(user_id) for user_id in ids]

    return DataLoader(load_fn=load)


def groups_of_user(context: Context) -> DataLoader[uuid.UUID, list[AccessGroup]]:
    async def load(ids: Sequence[uuid.UUID]) -> list[list[AccessGroup]]:
        grouped: dict[uuid.UUID, list[AccessGroup]] = defaultdict(list)
        async with context.sessionmaker() as session:
            for user_id, group in await repository.groups_of_users(session, ids):
                grouped[user_id].append(group)
        return [grouped.get(user_id, []) for user_id in ids]

    return DataLoader(load_fn=load)
