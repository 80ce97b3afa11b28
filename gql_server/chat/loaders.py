"""Per-request dataloaders for chat: one statement per batch, whatever the page size."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from gql_server.chat import repository
from gql_server.context import Context
from gql_server.db.models import Document


def attachments_of_session(context: Context) -> DataLoader[uuid.UUID, list[Document]]:
    async def load(ids: Sequence[uuid.UUID]) -> list[list[Document]]:
        grouped: dict[uuid.UUID, list[Document]] = defaultdict(list)
        async with context.sessionmaker() as session:
            for document in await repository.documents_of_sessions(session, ids):
                if document.session_id is not None:
                    grouped[document.session_id].append(document)
        return [grouped.get(session_id, []) for session_id in ids]

    return DataLoader(load_fn=load)
