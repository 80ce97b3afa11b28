"""Event bus: in-process by default, Redis pub/sub with REDIS_URL.

Publishers (API resolvers, taskiq workers, generation tasks) publish JSON-able dicts on
named channels; subscriptions consume them. With Redis, each process holds ONE pub/sub
connection and fans messages out to local subscriber queues, so many concurrent
subscriptions do not cost one Redis connection each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Event = dict[str, Any]
SUBSCRIBER_QUEUE_SIZE = 10_000


class EventBus(Protocol):
    async def publish(self, channel: str, event: Event) -> None: ...

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Event]]: ...

    async def close(self) -> None: ...


class _LocalFanout:
    """Channel → subscriber queues for this process."""

    def __init__(self) -> None:
        self.queues: dict[str, set[asyncio.Queue[Event]]] = {}

    def add(self, channel: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_SIZE)
        self.queues.setdefault(channel, set()).add(queue)
        return queue

    def remove(self, channel: str, queue: asyncio.Queue[Event]) -> bool:
        """Remove a queue; True when the channel has no subscribers left."""
        queues = self.queues.get(channel)
        if queues is None:
            return True
        queues.discard(queue)
        if not queues:
            del self.queues[channel]
            return True
        return False

    def deliver(self, channel: str, event: Event) -> None:
        for queue in self.queues.get(channel, ()):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A consumer this far behind is stuck; drop its oldest event rather than
                # grow without bound. Final states are re-read from the database by consumers.
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(event)


async def _drain(queue: asyncio.Queue[Event]) -> AsyncIterator[Event]:
    while True:
        yield await queue.get()


class InProcessEventBus:
    def __init__(self) -> None:
        self._fanout = _LocalFanout()

    async def publish(self, channel: str, event: Event) -> None:
        self._fanout.deliver(channel, event)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Event]]:
        queue = self._fanout.add(channel)
        try:
            yield _drain(queue)
        finally:
            self._fanout.remove(channel, queue)

    async def close(self) -> None:
        self._fanout.queues.clear()


class RedisEventBus:
    def __init__(self, redis_url: str, prefix: str = "ragql:events:") -> None:
        import redis.asyncio as redis_asyncio

        self._redis = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._prefix = prefix
        self._fanout = _LocalFanout()
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._subscribed_once = asyncio.Event()

    @property
    def redis(self) -> Any:
        return self._redis

    async def publish(self, channel: str, event: Event) -> None:
        await self._redis.publish(self._prefix + channel, json.dumps(event, default=str))

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._subscribed_once.wait()
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                channel = str(message["channel"])[len(self._prefix) :]
                self._fanout.deliver(channel, json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("redis event bus reader failed; reconnecting in 1 s")
                await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with self._lock:
            first = channel not in self._fanout.queues
            queue = self._fanout.add(channel)
            if first:
                await self._pubsub.subscribe(self._prefix + channel)
                self._subscribed_once.set()
            if self._reader is None:
                self._reader = asyncio.create_task(self._read_forever(), name="redis-event-bus")
        try:
            yield _drain(queue)
        finally:
            async with self._lock:
                if self._fanout.remove(channel, queue):
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(self._prefix + channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self._redis.aclose()


def create_event_bus(redis_url: str | None) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else InProcessEventBus()
