"""taskiq tasks. They take ids, reload rows themselves and get resources from the broker's
state (set by the app's lifespan hook in `ragql serve`, or at start-up in `ragql worker`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated

from taskiq import AsyncBroker, Context, TaskiqDepends

from gql_server.documents.queue import IngestionLane
from workers.ingestion import IngestionResources, ingest_next

INGEST_TASK = "documents.ingest"
RESOURCES_STATE_KEY = "ingestion"


async def ingest_document_task(
    document_id: str, context: Annotated[Context, TaskiqDepends()], lane: str | None = None
) -> None:
    """Ingest the fairest waiting document of the lane (usually `document_id`; see
    workers/ingestion.py `ingest_next`). Messages queued before lanes existed carry no
    lane: theirs is read from the document."""
    resources: IngestionResources = getattr(context.state, RESOURCES_STATE_KEY)
    hint = uuid.UUID(document_id)
    if lane is None:
        from gql_server.documents import repository

        async with resources.sessionmaker() as session:
            document = await repository.get_document(session, hint)
        if document is None:
            return
        lane = IngestionLane.of(document.session_id)
    await ingest_next(resources, IngestionLane(lane), hint)


def register_tasks(broker: AsyncBroker) -> None:
    broker.register_task(ingest_document_task, task_name=INGEST_TASK)


class BrokerDocumentQueue:
    """What the API uses to enqueue (gql_server.documents.queue.DocumentQueue): each lane
    has its broker (the same in-process broker for both, or one Redis stream each)."""

    def __init__(self, brokers: Mapping[IngestionLane, AsyncBroker]) -> None:
        self.brokers = dict(brokers)

    async def enqueue_ingestion(self, document_id: uuid.UUID, lane: IngestionLane) -> None:
        task = self.brokers[lane].find_task(INGEST_TASK)
        assert task is not None, "register_tasks(broker) first"
        await task.kiq(str(document_id), lane=lane.value)
