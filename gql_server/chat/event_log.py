"""The replayable per-message event log behind `messageStream`.

Every event a generation emits (SOURCES, TOKEN, DONE, ERROR) carries a sequence number
and is appended here *and* published on the event bus. A subscriber subscribes to the
bus first, then reads the log after its `afterSeq`, then continues with live events,
dropping any whose seq it has already seen: nothing is lost in the gap between the
read and the subscription, and nothing is delivered twice.

Without Redis the log is a dict of lists in this process, dropped a while after the
message finishes. With REDIS_URL it is one Redis Stream per message (entry id = seq),
so a client reconnecting to any API process replays from the same log. Once a log has
expired, the subscription rebuilds SOURCES + DONE from the stored message row.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from gql_server.events.kinds import ANSWER_EVENT_TYPES, AnswerEvent, from_json, is_terminal, to_json

# How long a finished message's events stay replayable; after that the stored row answers.
FINISHED_LOG_TTL_SECONDS = 600.0
# A log whose generation never finished (a crashed process) is dropped after this long.
UNFINISHED_LOG_TTL_SECONDS = 3600.0


def message_channel(message_id: uuid.UUID | str) -> str:
    return f"chat.message.{message_id}"


class MessageEventLog(Protocol):
    async def append(self, message_id: uuid.UUID, event: AnswerEvent) -> None: ...

    async def read_after(self, message_id: uuid.UUID, after_seq: int) -> list[AnswerEvent]: ...

    async def close(self) -> None: ...


@dataclass
class _Log:
    events: list[AnswerEvent] = field(default_factory=list)
    touched_at: float = field(default_factory=time.monotonic)
    finished: bool = False


class InProcessEventLog:
    def __init__(
        self,
        finished_ttl_seconds: float = FINISHED_LOG_TTL_SECONDS,
        unfinished_ttl_seconds: float = UNFINISHED_LOG_TTL_SECONDS,
    ) -> None:
        self._logs: dict[uuid.UUID, _Log] = {}
        self._finished_ttl = finished_ttl_seconds
        self._unfinished_ttl = unfinished_ttl_seconds
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="chat-event-log-sweeper")

    async def append(self, message_id: uuid.UUID, event: AnswerEvent) -> None:
        log = self._logs.get(message_id)
        if log is None:
            log = self._logs[message_id] = _Log()
        log.events.append(event)
        if is_terminal(event):
            log.finished = True
            log.touched_at = time.monotonic()

    async def read_after(self, message_id: uuid.UUID, after_seq: int) -> list[AnswerEvent]:
        log = self._logs.get(message_id)
        if log is None:
            return []
        events = log.events
        # Events are appended in seq order starting at 1, so the index is seq - 1.
        start = max(0, after_seq)
        if start < len(events) and events[start].seq == after_seq + 1:
            return events[start:]
        return [event for event in events if event.seq > after_seq]

    def sweep(self) -> None:
        now = time.monotonic()
        expired = [
            message_id
            for message_id, log in self._logs.items()
            if now - log.touched_at > (self._finished_ttl if log.finished else self._unfinished_ttl)
        ]
        for message_id in expired:
            del self._logs[message_id]

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self._finished_ttl / 2))
            self.sweep()

    def __len__(self) -> int:
        return len(self._logs)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._logs.clear()


class RedisEventLog:
    """One Redis Stream per message; the entry id is `<seq>-0`, so XRANGE replays by seq."""

    def __init__(
        self,
        redis: Any,
        prefix: str = "ragql:chat:log:",
        finished_ttl_seconds: float = FINISHED_LOG_TTL_SECONDS,
        unfinished_ttl_seconds: float = UNFINISHED_LOG_TTL_SECONDS,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._finished_ttl = int(finished_ttl_seconds)
        self._unfinished_ttl = int(unfinished_ttl_seconds)

    def _key(self, message_id: uuid.UUID) -> str:
        return f"{self._prefix}{message_id}"

    async def append(self, message_id: uuid.UUID, event: AnswerEvent) -> None:
        key = self._key(message_id)
        seq = event.seq
        payload = to_json(event)
        if seq == 1 or is_terminal(event):
            # The expiry is set when the log starts and reset when it ends; tokens in
            # between cost one XADD each.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(key, {"e": payload}, id=f"{seq}-0")
                pipe.expire(key, self._finished_ttl if is_terminal(event) else self._unfinished_ttl)
                await pipe.execute()
        else:
            await self._redis.xadd(key, {"e": payload}, id=f"{seq}-0")

    async def read_after(self, message_id: uuid.UUID, after_seq: int) -> list[AnswerEvent]:
        entries = await self._redis.xrange(self._key(message_id), min=f"{after_seq + 1}-0", max="+")
        events = (from_json(fields["e"]) for _, fields in entries)
        return [event for event in events if isinstance(event, ANSWER_EVENT_TYPES)]

    async def close(self) -> None:
        return None
