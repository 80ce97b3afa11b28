"""taskiq tasks. They take ids, reload rows themselves and get resources from the broker's
state (set by the app's lifespan hook in `ragql serve`, or at WORKER_STARTUP in `ragql worker`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from taskiq import AsyncBroker, Context, TaskiqDepends

from workers.ingestion import IngestionResources, ingest_document

INGEST_TASK = "documents.ingest"
RESOURCES_STATE_KEY = "ingestion"


async def ingest_document_task(document_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    """Parse, chunk, embed and store one document (idempotent; see workers/ingestion.py)."""
    resources: IngestionResources = getattr(context.state, RESOURCES_STATE_KEY)
    await ingest_document(resources, uuid.UUID(document_id))


def register_tasks(broker: AsyncBroker) -> None:
    broker.register_task(ingest_document_task, task_name=INGEST_TASK)


class BrokerDocumentQueue:
    """What the API uses to enqueue (gql_server.documents.queue.DocumentQueue)."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker

    async def enqueue_ingestion(self, document_id: uuid.UUID) -> None:
        task = self.broker.find_task(INGEST_TASK)
        assert task is not None, "register_tasks(broker) first"
        await task.kiq(str(document_id))
