"""`ragql worker`: a taskiq worker process consuming the Redis stream."""

from __future__ import annotations

import asyncio
import logging
import signal

from taskiq import TaskiqEvents, TaskiqState
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

from gql_server.database_setup import open_database
from gql_server.events.bus import create_event_bus
from gql_server.settings import Settings
from workers.broker import create_broker
from workers.ingestion import IngestionResources
from workers.tasks import RESOURCES_STATE_KEY, register_tasks

logger = logging.getLogger(__name__)


async def _serve(settings: Settings, concurrency: int) -> None:
    broker = create_broker(settings)
    register_tasks(broker)
    closers: list = []

    async def startup(state: TaskiqState) -> None:
        database = await open_database(settings, migrate=False, pool_size=max(2, concurrency + 2))
        bus = create_event_bus(settings.redis_url)
        closers.extend([bus.close, database.close])
        resources = IngestionResources(
            settings=settings,
            engine=database.engine,
            sessionmaker=database.sessionmaker,
            bus=bus,
            concurrency=concurrency,
        )
        setattr(state, RESOURCES_STATE_KEY, resources)
        # Load the embedding model now rather than inside the first task.
        await resources.embedder()
        logger.info("ragql worker ready (concurrency %d)", concurrency)

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
    broker.is_worker_process = True
    await broker.startup()
    receiver = asyncio.create_task(
        run_receiver_task(broker, max_async_tasks=concurrency, ack_time=AcknowledgeType.WHEN_EXECUTED)
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, receiver.cancel)
    try:
        await receiver
    except asyncio.CancelledError:
        logger.info("ragql worker stopping; unfinished tasks are redelivered to another worker")
    finally:
        resources = getattr(broker.state, RESOURCES_STATE_KEY, None)
        if resources is not None:
            resources.cancel_all()
        await broker.shutdown()
        for close in closers:
            await close()


def run_worker(settings: Settings, concurrency: int) -> int:
    asyncio.run(_serve(settings, concurrency))
    return 0
