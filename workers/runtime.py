"""Ingestion inside `ragql serve`: entered by the app's lifespan (gql_server/app.py).

Without REDIS_URL the in-process broker runs the tasks on the server's event loop (CPU
work in threads) and, at start, re-enqueues documents a killed process left half done.
With REDIS_URL the server only enqueues; `ragql worker` processes run the tasks and
redelivery covers crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_server.db.models import Document
from gql_server.documents import repository
from gql_server.documents.queue import IngestionLane
from gql_server.documents.storage import incoming_dir, remove_stale_files, spool_dir
from gql_server.events.bus import EventBus
from gql_server.settings import Settings
from workers.broker import create_brokers
from workers.ingestion import IngestionResources
from workers.tasks import BrokerDocumentQueue, register_tasks

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class IngestionRuntime:
    """What the API process holds of ingestion: where to enqueue, and the tasks' resources."""

    queue: BrokerDocumentQueue
    resources: IngestionResources


@contextlib.asynccontextmanager
async def running_ingestion(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
) -> AsyncIterator[IngestionRuntime]:
    brokers = create_brokers(settings)
    # One broker in-process, one per lane (stream) with Redis.
    distinct = list({id(broker): broker for broker in brokers.values()}.values())
    resources = IngestionResources(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        bus=bus,
        concurrency=settings.ingest_concurrency,
    )
    for broker in distinct:
        register_tasks(broker, resources)
        await broker.startup()
    queue = BrokerDocumentQueue(brokers)
    embedded_workers = not settings.redis_url
    if embedded_workers:
        # Warm the embedding model in the background right after start-up: importing torch
        # and building the model holds the GIL for seconds at a time even in a thread, which
        # froze the event loop for 3.8 s when it happened at the first upload (measured with
        # GET /metrics). Awaiting it here instead would push a restart from ~3.5 s to ~8-16 s
        # (the restart must stay under 10 s), so the server answers at once and the model is
        # ready before a first upload realistically reaches the pipeline (an early one waits
        # for the same load under the loader's lock).
        warm_up = asyncio.create_task(resources.embedder(), name="embedding-model-warm-up")
        # Leftovers of a killed process: partial uploads and spool files.
        await asyncio.to_thread(remove_stale_files, incoming_dir(settings), 3600)
        await asyncio.to_thread(remove_stale_files, spool_dir(settings), 0)
        async with sessionmaker() as session:
            unfinished = (
                await session.execute(
                    select(Document.id, Document.session_id)
                    .where(Document.id.in_(await repository.working_document_ids(session)))
                    .order_by(Document.created_at)
                )
            ).all()
        for document_id, session_id in unfinished:
            logger.info("re-enqueueing document %s left unfinished by the previous run", document_id)
            await queue.enqueue_ingestion(document_id, IngestionLane.of(session_id))
    else:
        warm_up = None
    try:
        yield IngestionRuntime(queue, resources)
    finally:
        if warm_up is not None and not warm_up.done():
            await asyncio.wait([warm_up], timeout=SHUTDOWN_GRACE_SECONDS)
        if embedded_workers:
            # Stop the pipeline threads at their next step; the documents stay in their
            # working state and are re-enqueued at the next start.
            resources.cancel_all()
            running = [task for broker in distinct for task in getattr(broker, "_running_tasks", ())]
            if running:
                _, pending = await asyncio.wait(running, timeout=SHUTDOWN_GRACE_SECONDS)
                for task in pending:
                    task.cancel()
        for broker in distinct:
            await broker.shutdown()
