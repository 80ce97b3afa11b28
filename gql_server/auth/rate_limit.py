"""Log-in attempt limits per account and per client address.

In embedded mode the counters live in memory; with REDIS_URL they live in Redis so
every API replica shares them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol


class AttemptCounter(Protocol):
    async def hit(self, key: str, window_seconds: int) -> int:
        """Record one failed attempt and return the number within the window."""

    async def count(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Failed attempts within the window, and seconds until the oldest expires."""

    async def reset(self, key: str) -> None: ...


class InMemoryAttemptCounter:
    def __init__(self) -> None:
        self._attempts: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()

    def _trim(self, key: str, window_seconds: int) -> deque[float]:
        now = time.monotonic()
        attempts = self._attempts.setdefault(key, deque())
        while attempts and attempts[0] <= now - window_seconds:
            attempts.popleft()
        return attempts

    async def hit(self, key: str, window_seconds: int) -> int:
        async with self._lock:
            attempts = self._trim(key, window_seconds)
            attempts.append(time.monotonic())
            if len(self._attempts) > 100_000:  # bound memory under a credential-stuffing flood
                self._attempts = {k: v for k, v in self._attempts.items() if v}
            return len(attempts)

    async def count(self, key: str, window_seconds: int) -> tuple[int, float]:
        async with self._lock:
            attempts = self._trim(key, window_seconds)
            if not attempts:
                return 0, 0.0
            return len(attempts), max(0.0, attempts[0] + window_seconds - time.monotonic())

    async def reset(self, key: str) -> None:
        async with self._lock:
            self._attempts.pop(key, None)


class RedisAttemptCounter:
    def __init__(self, redis: object, prefix: str = "ragql:login:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, window_seconds: int) -> int:
        name = self._prefix + key
        now = time.time()
        pipe = self._redis.pipeline()  # type: ignore[attr-defined]
        pipe.zadd(name, {f"{now}:{id(pipe)}": now})
        pipe.zremrangebyscore(name, 0, now - window_seconds)
        pipe.zcard(name)
        pipe.expire(name, window_seconds)
        results = await pipe.execute()
        return int(results[2])

    async def count(self, key: str, window_seconds: int) -> tuple[int, float]:
        name = self._prefix + key
        now = time.time()
        await self._redis.zremrangebyscore(name, 0, now - window_seconds)  # type: ignore[attr-defined]
        oldest = await self._redis.zrange(name, 0, 0, withscores=True)  # type: ignore[attr-defined]
        total = await self._redis.zcard(name)  # type: ignore[attr-defined]
        if not oldest:
            return int(total), 0.0
        return int(total), max(0.0, float(oldest[0][1]) + window_seconds - now)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)  # type: ignore[attr-defined]


class LoginRateLimiter:
    def __init__(
        self, counter: AttemptCounter, per_account: int, per_address: int, window_seconds: int
    ) -> None:
        self._counter = counter
        self._per_account = per_account
        self._per_address = per_address
        self._window = window_seconds

    async def retry_after(self, email: str, address: str) -> int | None:
        """Seconds to wait when either limit is exhausted, else None."""
        account_count, account_wait = await self._counter.count("acct:" + email.lower(), self._window)
        address_count, address_wait = await self._counter.count("addr:" + address, self._window)
        waits = []
        if account_count >= self._per_account:
            waits.append(account_wait)
        if address_count >= self._per_address:
            waits.append(address_wait)
        return int(max(waits)) + 1 if waits else None

    async def record_failure(self, email: str, address: str) -> None:
        await self._counter.hit("acct:" + email.lower(), self._window)
        await self._counter.hit("addr:" + address, self._window)

    async def record_success(self, email: str) -> None:
        await self._counter.reset("acct:" + email.lower())
