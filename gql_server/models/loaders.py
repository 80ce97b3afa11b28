"""Per-request dataloaders for models: one statement per batch, whatever the page size."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from gql_server.context import Context
from gql_server.db.models import ModelAccessGrant
from gql_server.models import repository


def document_count(context: Context) -> DataLoader[uuid.UUID, int]:
    async def load(ids: Sequence[uuid.UUID]) -> list[int]:
        async with context.sessionmaker() as session:
            counts = await repository.document_counts(session, ids)
        return [counts.get(model_id, 0) for model_id in ids]

    return DataLoader(load_fn=load)


def grants_of_model(context: Context) -> DataLoader[uuid.UUID, list[ModelAccessGrant]]:
    async def load(ids: Sequence[uuid.UUID]) -> list[list[ModelAccessGrant]]:
        grouped: dict[uuid.UUID, list[ModelAccessGrant]] = defaultdict(list)
        async with context.sessionmaker() as session:
            for grant in await repository.grants_of_models(session, ids):
                grouped[grant.model_id].append(grant)
        return [grouped.get(model_id, []) for model_id in ids]

    return DataLoader(load_fn=load)
