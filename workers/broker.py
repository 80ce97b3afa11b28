"""The taskiq broker, chosen from settings.

No REDIS_URL: an `InMemoryBroker` inside `ragql serve` (tasks run on the server's event
loop; their CPU work runs in threads). With REDIS_URL: a Redis stream broker with
acknowledgement, consumed by `ragql worker` processes.

taskiq-redis 1.2's `RedisStreamBroker` redelivers a message whose worker died with
XAUTOCLAIM once it has been idle for `idle_timeout`, but (as of 1.2.4) it only runs the
claim after XREADGROUP returned new messages, so on a quiet queue a dead worker's
document would never be picked up again; and a task that runs longer than
`idle_timeout` (a 1,000-page PDF) would be claimed by a second worker while the first
is still at it. `LeasedRedisStreamBroker` fixes both: it claims idle messages on every
turn of its loop, and renews a lease on the messages it holds (XCLAIM ... JUSTID resets
their idle time) while their tasks run. So `idle_timeout` is a lease: a worker that
dies loses its messages about one lease after its death, and a live one keeps them.

Ingestion has two lanes (model documents, chat attachments; see workers/ingestion.py
`ingest_next`). In Redis mode each lane is its own stream with its own consumer group
(`ragql:tasks` for model documents, as before, and `ragql:tasks:attachments`), and `ragql
worker` runs one receiver per lane with `--concurrency` tasks each, so a backlog in one
stream never holds a slot the other lane needs. Each stream keeps the guarantees above
(leases, reclaim of a dead worker's messages). In-process, one broker runs both lanes'
tasks; the lanes' slots are semaphores in IngestionResources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from gql_server.documents.queue import IngestionLane
from gql_server.settings import Settings

logger = logging.getLogger(__name__)


def queue_name(base: str, lane: IngestionLane = IngestionLane.MODEL_DOCUMENTS) -> str:
    """The stream of `lane`; `base` is the TASK_QUEUE setting."""
    # Model documents keep the stream name of before the lanes, so messages queued by an
    # older version are still consumed (their task reads the lane from the document).
    return base if lane is IngestionLane.MODEL_DOCUMENTS else f"{base}:{lane.value}"


class LeasedRedisStreamBroker(RedisStreamBroker):
    def __init__(self, url: str, *, lease: float, **kwargs: Any) -> None:
        super().__init__(
            url, idle_timeout=int(lease * 1000), xread_block=min(2000, int(lease * 500)), **kwargs
        )  # type: ignore[arg-type]
        self.lease = lease
        self._held: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        ack = super()._ack_generator(id, queue_name)

        async def ack_and_release() -> None:
            try:
                await ack()
            finally:
                self._held.discard(id)

        return ack_and_release

    def _held_message(self, message_id: object, data: bytes) -> AckableMessage:
        key = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
        self._held.add(key)
        return AckableMessage(data=data, ack=self._ack_generator(id=key, queue_name=self.queue_name))

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            if not self._held:
                continue
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    await redis.xclaim(
                        self.queue_name,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=0,
                        message_ids=list(self._held),
                        justid=True,
                    )
            except Exception:
                logger.exception("could not renew the lease on running tasks")

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:  # type: ignore[override]
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_leases(), name="task-lease-renewer")
        try:
            async with Redis(connection_pool=self.connection_pool) as redis:
                while True:
                    # Messages of dead workers first: they have waited longest.
                    _, claimed, *_ = await redis.xautoclaim(
                        self.queue_name,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=self.idle_timeout,
                        start_id="0-0",
                        count=10,
                    )
                    for message_id, fields in claimed:
                        if not fields:  # deleted from the stream meanwhile
                            continue
                        logger.info("redelivering task message %s (its worker stopped)", message_id)
                        yield self._held_message(message_id, fields[b"data"])
                    fetched: Any = await redis.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        noack=False,
                        count=1,
                    )
                    for _, messages in fetched or []:
                        for message_id, fields in messages:
                            yield self._held_message(message_id, fields[b"data"])
        finally:
            if self._renewer is not None:
                self._renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._renewer
                self._renewer = None


def create_brokers(settings: Settings) -> dict[IngestionLane, AsyncBroker]:
    """A broker per lane: one Redis stream each, or the same in-process broker for both."""
    if settings.redis_url:
        redis_url = settings.redis_url
        return {
            lane: LeasedRedisStreamBroker(
                redis_url,
                lease=settings.task_lease_seconds,
                queue_name=queue_name(settings.task_queue, lane),
                consumer_group_name=queue_name(settings.task_queue, lane) + ":workers",
                consumer_id="0",  # a group created after messages were queued still gets them
            )
            for lane in IngestionLane
        }
    # Kicked tasks start at once (the in-memory broker does not apply max_async_tasks);
    # they wait for a slot of their lane (IngestionResources.slots).
    broker = InMemoryBroker(max_async_tasks=100, propagate_exceptions=False)
    return dict.fromkeys(IngestionLane, broker)
