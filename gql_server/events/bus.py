"""Event bus: in-process by default, Redis pub/sub with REDIS_URL.

Publishers (API resolvers, taskiq workers, generation tasks) publish typed events
(`gql_server/events/kinds.py`) on named channels; subscriptions receive the same objects.
The in-process bus hands them over as they are; `RedisEventBus` turns them into JSON and
back (`to_json` / `from_json`) at the Redis boundary only. With Redis, each process holds
ONE pub/sub connection and fans messages out to local subscriber queues, so many concurrent
subscriptions do not cost one Redis connection each.

The `access` channel carries `AccessChanged` events: published after a transaction that
narrows who may see what commits, consumed by `gql_server.access.watch`, which ends open
subscriptions that lost access.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pydantic

from gql_server.events.kinds import AccessChanged, AccessChangeReason, Event, from_json, to_json

__all__ = [
    "ACCESS_CHANNEL",
    "AccessChangeReason",
    "AccessChanged",
    "Event",
    "EventBus",
    "InProcessEventBus",
    "RedisEventBus",
    "Subscription",
    "create_event_bus",
    "publish_access_changed",
]

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_SIZE = 10_000


class Subscription:
    """One subscriber's events, in publication order: an async iterator over a local queue.

    Besides iterating, a consumer can ask whether events are waiting (`pending`), take them
    without waiting (`take_waiting`) and wait until one arrives without taking it
    (`wait_pending`) — the access watch uses these to settle access changes before a stream
    yields its next event. Waiting is cancellation-safe: nothing is taken until returned.
    """

    __slots__ = ("_items", "_ready")

    def __init__(self) -> None:
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()

    def put(self, event: Event) -> None:
        if len(self._items) >= SUBSCRIBER_QUEUE_SIZE:
            # A consumer this far behind is stuck; drop its oldest event rather than
            # grow without bound. Final states are re-read from the database by consumers.
            self._items.popleft()
        self._items.append(event)
        self._ready.set()

    @property
    def pending(self) -> int:
        return len(self._items)

    def take_waiting(self) -> list[Event]:
        taken = list(self._items)
        self._items.clear()
        return taken

    async def wait_pending(self) -> None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class EventBus(Protocol):
    async def publish(self, channel: str, event: Event) -> None: ...

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def close(self) -> None: ...


class _LocalFanout:
    """Channel → subscriber queues for this process."""

    def __init__(self) -> None:
        self.queues: dict[str, set[Subscription]] = {}

    def add(self, channel: str) -> Subscription:
        subscription = Subscription()
        self.queues.setdefault(channel, set()).add(subscription)
        return subscription

    def remove(self, channel: str, subscription: Subscription) -> bool:
        """Remove a subscriber; True when the channel has no subscribers left."""
        queues = self.queues.get(channel)
        if queues is None:
            return True
        queues.discard(subscription)
        if not queues:
            del self.queues[channel]
            return True
        return False

    def deliver(self, channel: str, event: Event) -> None:
        for subscription in self.queues.get(channel, ()):
            subscription.put(event)


class InProcessEventBus:
    def __init__(self) -> None:
        self._fanout = _LocalFanout()

    async def publish(self, channel: str, event: Event) -> None:
        self._fanout.deliver(channel, event)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = self._fanout.add(channel)
        try:
            yield subscription
        finally:
            self._fanout.remove(channel, subscription)

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
        await self._redis.publish(self._prefix + channel, to_json(event))

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._subscribed_once.wait()
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                channel = str(message["channel"])[len(self._prefix) :]
                try:
                    event = from_json(message["data"])
                except pydantic.ValidationError as error:
                    logger.warning("dropped a malformed event on channel %s: %s", channel, error)
                    if channel == ACCESS_CHANNEL:  # an access change we cannot read: everyone re-checks
                        self._fanout.deliver(ACCESS_CHANNEL, AccessChanged(AccessChangeReason.RESYNC))
                    continue
                self._fanout.deliver(channel, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("redis event bus reader failed; reconnecting in 1 s")
                await asyncio.sleep(1.0)
                # Messages published while the connection was down are lost. Progress and
                # token streams re-read their state on their own timers; access watches are
                # told now that anything may have changed, so they re-check at once.
                self._fanout.deliver(ACCESS_CHANNEL, AccessChanged(AccessChangeReason.RESYNC))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        async with self._lock:
            first = channel not in self._fanout.queues
            subscription = self._fanout.add(channel)
            if first:
                await self._pubsub.subscribe(self._prefix + channel)
                self._subscribed_once.set()
            if self._reader is None:
                self._reader = asyncio.create_task(self._read_forever(), name="redis-event-bus")
        try:
            yield subscription
        finally:
            async with self._lock:
                if self._fanout.remove(channel, subscription):
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


ACCESS_CHANNEL = "access"


async def publish_access_changed(bus: EventBus, change: AccessChanged) -> None:
    """Tell every process's open subscriptions; call after the change is committed.

    Never raises: the change is already committed and the mutation must answer; a lost
    message is caught by the watches' periodic re-check (watch.RECHECK_SECONDS).
    """
    try:
        await bus.publish(ACCESS_CHANNEL, change)
    except Exception:
        logger.warning(
            "could not publish an access change (%s); open subscriptions re-check on their timer",
            change.reason.value,
            exc_info=True,
        )


def create_event_bus(redis_url: str | None) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else InProcessEventBus()
