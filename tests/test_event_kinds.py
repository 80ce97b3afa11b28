"""Events are typed objects on both sides of Redis: every kind published on the Redis bus,
or appended to the chat event log, comes back equal to what was sent; an unreadable
message on the access channel becomes a RESYNC (everyone re-checks)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from gql_server.chat.event_log import RedisEventLog
from gql_server.db.models import DocumentStatus, MessageStatus
from gql_server.events.bus import ACCESS_CHANNEL, InProcessEventBus, RedisEventBus
from gql_server.events.kinds import (
    AccessChanged,
    AccessChangeReason,
    AnswerDone,
    AnswerFailed,
    AnswerSources,
    AnswerToken,
    DocumentProgressed,
    Event,
    GenerationStop,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"


def _one_of_each() -> list[Event]:
    document_id = uuid.uuid4()
    return [
        AnswerSources(
            1,
            (
                {
                    "number": 1,
                    "document_id": str(document_id),
                    "score": 0.42,
                    "location": {"kind": "PAGE", "page": 3},
                    "table": None,
                },
            ),
        ),
        AnswerToken(2, "Grüße "),
        AnswerDone(
            3,
            status=MessageStatus.COMPLETE,
            text="Grüße [1]",
            citations=(1,),
            usage={"prompt_tokens": 12, "completion_tokens": None},
            timings={"total_ms": 1.5},
            truncated=True,
            evidence="STRONG",
        ),
        AnswerFailed(4, message="The provider failed.", text="partial"),
        GenerationStop(uuid.uuid4()),
        DocumentProgressed(
            document_id=document_id,
            model_id=uuid.uuid4(),
            session_id=None,
            status=DocumentStatus.EMBEDDING,
            progress=0.4567,
            pages_done=3,
            page_count=None,
            chunk_count=17,
            elapsed_seconds=2.25,
            eta_seconds=None,
            error=None,
            warnings=("No text on page 2",),
            attempt=2,
            deleted=False,
            at=time.time(),
        ),
        AccessChanged.of(
            AccessChangeReason.GRANT_REVOKED, user_ids=[uuid.uuid4(), None], group_id=uuid.uuid4()
        ),
    ]


async def test_every_kind_crosses_the_redis_bus_unchanged() -> None:
    bus = RedisEventBus(REDIS_URL, prefix=f"ragql:test:kinds:{uuid.uuid4().hex}:")
    try:
        sent = _one_of_each()
        async with bus.subscribe("channel") as received, bus.subscribe(ACCESS_CHANNEL) as access:
            await asyncio.sleep(0.2)  # the reader task is subscribed
            for event in sent:
                await bus.publish("channel", event)
            got = [await asyncio.wait_for(anext(received), 10) for _ in sent]
            assert got == sent
            assert [type(event) for event in got] == [type(event) for event in sent]

            await bus.redis.publish(
                f"{bus._prefix}{ACCESS_CHANNEL}", '{"kind": "ACCESS_CHANGED", "reason": "?"}'
            )
            await bus.redis.publish(f"{bus._prefix}{ACCESS_CHANNEL}", "not json")
            resync = [await asyncio.wait_for(anext(access), 10) for _ in range(2)]
            assert resync == [AccessChanged(AccessChangeReason.RESYNC)] * 2
    finally:
        await bus.close()


async def test_the_redis_event_log_replays_typed_events() -> None:
    bus = RedisEventBus(REDIS_URL)
    log = RedisEventLog(bus.redis, prefix=f"ragql:test:kinds-log:{uuid.uuid4().hex}:")
    message_id = uuid.uuid4()
    answer = _one_of_each()[:4]
    try:
        for event in answer:
            await log.append(message_id, event)
        assert await log.read_after(message_id, 0) == answer
        assert await log.read_after(message_id, 2) == answer[2:]
    finally:
        await bus.redis.delete(log._key(message_id))
        await bus.close()


async def test_the_in_process_bus_hands_over_the_objects_themselves() -> None:
    bus = InProcessEventBus()
    sent = _one_of_each()
    async with bus.subscribe("channel") as received:
        for event in sent:
            await bus.publish("channel", event)
        got = [await anext(received) for _ in sent]
    assert all(mine is theirs for mine, theirs in zip(got, sent, strict=True))
