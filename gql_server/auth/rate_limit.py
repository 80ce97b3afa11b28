"""Log-in attempt limits per account and per client address (moving windows).

Every attempt is counted *before* its password is verified, atomically with the check:
one step decides "both the account's and the address's window have room" and records the
attempt in both. So N parallel guesses at one account get at most `limit` verifications
per window (before, the check and the count were separate awaits, and 17-18 of 30
parallel guesses were verified against a limit of 5). When the verification succeeds the
attempt is given back: the account's window is cleared (only someone who knows the
password can do that, so it gives an attacker nothing) and the address's entry of *this*
attempt is removed — never the address's other entries, so a known-good log-in slipped
between guesses does not buy more guesses. Failures, and attempts that end any other way
(an error, a dropped connection), stay counted.

In embedded mode the windows live in memory (one event loop: a check-and-record without
an await in between is atomic); with REDIS_URL they live in Redis, one Lua script per
check-and-record (atomic on the server, Redis's own clock, so every API replica shares
the limits whatever their clocks say).

Why not the `limits` library (issue 12 asked): its moving window — in memory and in
Redis — can only add entries. There is no way to give back the entry of an attempt that
turned out to be the owner's successful log-in, and it checks one key per call, not the
account and the address in one atomic step. Counting successes would lock out an office
behind one NAT address after LOGIN_ATTEMPTS_PER_ADDRESS log-ins per window; counting after
verifying is the race above. The two windows here are ~60 lines.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class AttemptWindows(Protocol):
    async def acquire(
        self, limits: Sequence[tuple[str, int]], window_seconds: int, entry: str
    ) -> float | None:
        """If every key has fewer than its limit entries within the window, record `entry`
        in all of them and return None; otherwise record nothing and return the seconds
        until the fullest refusing window has room again. Atomic."""

    async def release(self, key: str, entry: str) -> None:
        """Remove one recorded entry."""

    async def clear(self, key: str) -> None: ...


class InMemoryAttemptWindows:
    MAX_KEYS = 100_000  # bound memory under a credential-stuffing flood

    def __init__(self) -> None:
        self._windows: dict[str, deque[tuple[float, str]]] = {}

    def _trimmed(self, key: str, now: float, window_seconds: int) -> deque[tuple[float, str]]:
        entries = self._windows.setdefault(key, deque())
        while entries and entries[0][0] <= now - window_seconds:
            entries.popleft()
        return entries

    async def acquire(
        self, limits: Sequence[tuple[str, int]], window_seconds: int, entry: str
    ) -> float | None:
        # No await in here: on one event loop, check-and-record is atomic.
        now = time.monotonic()
        wait: float | None = None
        windows = []
        for key, limit in limits:
            entries = self._trimmed(key, now, window_seconds)
            windows.append(entries)
            if len(entries) >= limit:
                # The window has room again when the entry that makes it full expires.
                oldest = entries[len(entries) - limit][0] if limit > 0 else now
                key_wait = max(0.0, oldest + window_seconds - now)
                wait = key_wait if wait is None else max(wait, key_wait)
        if wait is not None:
            return wait
        for entries in windows:
            entries.append((now, entry))
        if len(self._windows) > self.MAX_KEYS:
            self._windows = {
                key: entries
                for key, entries in self._windows.items()
                if entries and entries[-1][0] > now - window_seconds
            }
        return None

    async def release(self, key: str, entry: str) -> None:
        entries = self._windows.get(key)
        if entries:
            for item in entries:
                if item[1] == entry:
                    entries.remove(item)
                    break

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)


# KEYS: the windows. ARGV[1]: window in ms, ARGV[2]: the entry, ARGV[2+i]: limit of KEYS[i].
# Returns -1 when recorded, else the milliseconds until the fullest window has room.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[1])
local wait = -1
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[2 + i])
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local key_wait = window
    if limit > 0 then
      local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
      key_wait = tonumber(oldest[2]) + window - now
    end
    if key_wait < 0 then key_wait = 0 end
    if key_wait > wait then wait = key_wait end
  end
end
if wait >= 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
end
return -1
"""


class RedisAttemptWindows:
    def __init__(self, redis: Any, prefix: str = "ragql:login:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(
        self, limits: Sequence[tuple[str, int]], window_seconds: int, entry: str
    ) -> float | None:
        keys = [self._prefix + key for key, _ in limits]
        args = [window_seconds * 1000, entry, *(limit for _, limit in limits)]
        wait_ms = int(await self._acquire(keys=keys, args=args))
        return None if wait_ms < 0 else wait_ms / 1000

    async def release(self, key: str, entry: str) -> None:
        await self._redis.zrem(self._prefix + key, entry)

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)


@dataclass(frozen=True)
class LoginAdmission:
    """The outcome of asking to verify one log-in attempt."""

    allowed: bool
    retry_after: int = 0  # whole seconds, when refused
    account_key: str = ""
    address_key: str = ""
    entry: str = ""


class LoginRateLimiter:
    def __init__(
        self, windows: AttemptWindows, per_account: int, per_address: int, window_seconds: int
    ) -> None:
        self._windows = windows
        self._per_account = per_account
        self._per_address = per_address
        self._window = window_seconds

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed: bounded key size, and no email addresses in plain text in Redis.
        return (
            "acct:" + hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]
        )

    async def admit(self, email: str, address: str) -> LoginAdmission:
        """Count this attempt against both limits, or refuse it. Call before verifying."""
        account_key, address_key = self._account_key(email), "addr:" + address
        entry = uuid.uuid4().hex
        wait = await self._windows.acquire(
            [(address_key, self._per_address), (account_key, self._per_account)], self._window, entry
        )
        if wait is not None:
            return LoginAdmission(allowed=False, retry_after=int(wait) + 1)
        return LoginAdmission(True, 0, account_key, address_key, entry)

    async def succeeded(self, admission: LoginAdmission) -> None:
        """The owner proved the password: the account's window starts again and this
        attempt stops counting against the address (its other attempts keep counting)."""
        if not admission.allowed:
            return
        await self._windows.clear(admission.account_key)
        await self._windows.release(admission.address_key, admission.entry)
