"""taskiq tasks. They take ids, reload rows themselves and get their resources through
`TaskiqDepends` from the broker's state, which `register_tasks` fills at WORKER_STARTUP
(the in-process broker of `ragql serve` runs that event too; `ragql worker` is a worker
process). No module-level resources: a task sees what its broker was started with."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated

from taskiq import AsyncBroker, TaskiqDepends, TaskiqEvents, TaskiqState

from gql_server.documents.queue import IngestionLane
from workers.ingestion import IngestionResources, ingest_next

INGEST_TASK = "documents.ingest"


def ingestion_resources(state: Annotated[TaskiqState, TaskiqDepends()]) -> IngestionResources:
    """The resources `register_tasks` put on the broker's state at WORKER_STARTUP."""
    resources: IngestionResources = state.ingestion
    return resources


async def ingest_document_task(
    document_id: str,
    resources: Annotated[IngestionResources, TaskiqDepends(ingestion_resources)],
    lane: str | None = None,
) -> None:
    """Ingest the fairest waiting document of the lane (usually `document_id`; see
    workers/ingestion.py `ingest_next`). Messages queued before lanes existed carry no
    lane: theirs is read from the document."""
    hint = uuid.UUID(document_id)
    if lane is None:
        from gql_server.documents import repository

        async with resources.sessionmaker() as session:
            document = await repository.get_document(session, hint)
        if document is None:
            return
        lane = IngestionLane.of(document.session_id)
    await ingest_next(resources, IngestionLane(lane), hint)


def register_tasks(broker: AsyncBroker, resources: IngestionResources) -> None:
    """The ingestion task on `broker`, run with `resources` once the broker starts as a worker."""
    broker.register_task(ingest_document_task, task_name=INGEST_TASK)

    def provide_resources(state: TaskiqState) -> None:
        state.ingestion = resources

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, provide_resources)


class BrokerDocumentQueue:
    """What the API uses to enqueue (gql_server.documents.queue.DocumentQueue): each lane
    has its broker (the same in-process broker for both, or one Redis stream each)."""

    def __init__(self, brokers: Mapping[IngestionLane, AsyncBroker]) -> None:
        self.brokers = dict(brokers)

    async def enqueue_ingestion(self, document_id: uuid.UUID, lane: IngestionLane) -> None:
        task = self.brokers[lane].find_task(INGEST_TASK)
        assert task is not None, "register_tasks(broker) first"
        await task.kiq(str(document_id), lane=lane.value)
