"""`ragql worker`: a taskiq worker process consuming the Redis streams, one per ingestion lane
(model documents, chat attachments), with `concurrency` tasks per lane."""

from __future__ import annotations

import asyncio
import logging
import signal

from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

from gql_server.database_setup import open_database
from gql_server.events.bus import create_event_bus
from gql_server.settings import Settings
from workers.broker import create_brokers
from workers.ingestion import IngestionResources
from workers.tasks import register_tasks

logger = logging.getLogger(__name__)


async def _serve(settings: Settings, concurrency: int) -> None:
    brokers = create_brokers(settings)
    # Both lanes' tasks share the database pool: concurrency per lane, plus a little.
    database = await open_database(settings, migrate=False, pool_size=max(2, 2 * concurrency + 2))
    bus = create_event_bus(settings.redis_url)
    resources = IngestionResources(
        settings=settings,
        engine=database.engine,
        sessionmaker=database.sessionmaker,
        bus=bus,
        concurrency=concurrency,
    )
    started = []
    receivers: list[asyncio.Task[None]] = []
    try:
        # Load the embedding model now rather than inside the first task.
        await resources.embedder()
        for broker in brokers.values():
            broker.is_worker_process = True  # startup() runs WORKER_STARTUP: the tasks get `resources`
            register_tasks(broker, resources)
            await broker.startup()
            started.append(broker)
        receivers = [
            asyncio.create_task(
                run_receiver_task(
                    broker, max_async_tasks=concurrency, ack_time=AcknowledgeType.WHEN_EXECUTED
                ),
                name=f"ingestion-receiver-{lane.value}",
            )
            for lane, broker in brokers.items()
        ]
        logger.info("ragql worker ready (concurrency %d per lane: %s)", concurrency, ", ".join(brokers))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: [receiver.cancel() for receiver in receivers])
        try:
            await asyncio.gather(*receivers)
        except asyncio.CancelledError:
            logger.info("ragql worker stopping; unfinished tasks are redelivered to another worker")
    finally:
        for receiver in receivers:
            receiver.cancel()
        resources.cancel_all()
        for broker in started:
            await broker.shutdown()
        await bus.close()
        await database.close()


def run_worker(settings: Settings, concurrency: int) -> int:
    asyncio.run(_serve(settings, concurrency))
    return 0
