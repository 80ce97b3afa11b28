"""Per-request dataloaders for the audit log's names: one statement per batch, whatever the page size."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from gql_server.audit import repository
from gql_server.context import Context


def model_name(context: Context) -> DataLoader[uuid.UUID, str | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[str | None]:
        async with context.sessionmaker() as session:
            names = await repository.model_names(session, ids)
        return [names.get(model_id) for model_id in ids]

    return DataLoader(load_fn=load)
