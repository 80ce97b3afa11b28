"""Open subscriptions end when the caller's access ends.

A subscription checks access when it starts; without more, a socket opened before a grant
was revoked (or the account deactivated) would keep relaying events about objects its
caller may no longer see. `watch_access` runs next to each subscription's event loop:

- it listens on the bus's `access` channel (`AccessChanged`, published by the resolvers of
  models, users and groups after the transaction that narrows access commits — in every API
  process, through Redis pub/sub with REDIS_URL) and, for each change that concerns this
  subscription (its user, or a model it streams), re-reads the account (active, token
  version, role) and the object's policy (`gql_server/access/policy.py`) in the database;
- as a safety net for a lost message it re-checks every RECHECK_SECONDS anyway;
- `guard()` wraps the subscription's event generator: before each event is handed out, access
  changes already delivered are settled first (so an event published after a revocation is
  never relayed ahead of it), and a stream idly waiting for events is interrupted at once.

A lost access ends the stream with `AccessLost`, which the resolver turns into its clear
error (UNAUTHENTICATED for the account, NOT_FOUND for the object — or a typed NotFound).
Cost: nothing per streamed event but two attribute checks; one small query per concerned
access change and per RECHECK_SECONDS per open subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.access_tokens.service import TokenGrant, still_valid
from gql_server.db.availability import DATABASE_UNAVAILABLE_CODE, is_database_unavailable
from gql_server.db.models import User
from gql_server.events.bus import ACCESS_CHANNEL, AccessChanged, EventBus, Subscription
from gql_server.events.kinds import WIDENING_REASONS

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The safety net for an access change whose message never arrived (Redis down when the
# resolver published, or a reconnect the bus could not notice): the longest an open
# subscription can outlive its access. Each open subscription costs one primary-key read
# plus its policy query per period: 1,000 open sockets ≈ 33 small queries/s at 30 s.
RECHECK_SECONDS = 30.0
# Spread the timers so that subscriptions opened together do not re-check together.
RECHECK_JITTER = 0.2
# After a re-check that could not reach the database, try again this soon.
RETRY_SECONDS = 2.0

ACCOUNT_LOST_MESSAGE = "Your account was deactivated or signed out; sign in again."
UNVERIFIABLE_MESSAGE = (
    "Your access changed and could not be re-checked (the database is unavailable); subscribe again."
)

# Does the (freshly read, active) user still have access to what the subscription streams?
AccessCheck = Callable[[AsyncSession, User], Awaitable[bool]]


class AccessLost(Exception):
    """The subscription's caller lost access: end the stream with `code`/`message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def account(self) -> bool:
        """The account itself (deactivated, or its tokens revoked), not one object."""
        return self.code == "UNAUTHENTICATED"

    def as_graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


class AccessWatch:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        changes: Subscription,
        user: User,
        check: AccessCheck,
        lost_message: str,
        model_ids: set[uuid.UUID],
        personal_token: TokenGrant | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        # The personal access token the subscription authenticated with: re-read with the account.
        self._personal_token = personal_token
        self._changes = changes
        self._user_id = user.id
        self._token_version = user.token_version
        self._check = check
        self._lost_message = lost_message
        self._model_ids = model_ids
        self._lock = asyncio.Lock()
        self._lost: AccessLost | None = None
        # The task consuming `guard()`, while it waits for the wrapped stream's next event.
        self._waiting_task: asyncio.Task[object] | None = None
        self._cancelling: int | None = None

    @property
    def lost(self) -> AccessLost | None:
        return self._lost

    @property
    def model_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(self._model_ids)

    def watch_model(self, model_id: uuid.UUID) -> None:
        """Also re-check on changes that name this model (known once the stream read its row)."""
        self._model_ids.add(model_id)

    async def _recheck(self) -> AccessLost | None:
        async with self._sessionmaker() as session:
            user = await session.get(User, self._user_id)
            if user is None or not user.is_active or user.token_version != self._token_version:
                return AccessLost("UNAUTHENTICATED", ACCOUNT_LOST_MESSAGE)
            if self._personal_token is not None and (
                problem := await still_valid(session, self._personal_token)
            ):
                return AccessLost("UNAUTHENTICATED", problem)
            if not await self._check(session, user):
                return AccessLost("NOT_FOUND", self._lost_message)
        return None

    async def settle(self, *, due: bool = False) -> None:
        """Take the access changes delivered so far; re-check if one concerns us (or `due`)."""
        async with self._lock:
            if self._lost is not None:
                return
            waiting = [
                event
                for event in self._changes.take_waiting()
                if isinstance(event, AccessChanged) and event.reason not in WIDENING_REASONS
            ]
            concerned = any(change.concerns(self._user_id, self._model_ids) for change in waiting)
            if not (concerned or due):
                return
            try:
                lost = await self._recheck()
            except Exception as error:
                if not concerned:
                    raise  # a timer re-check: the run loop logs it and retries soon
                # Access changed and cannot be verified: fail closed.
                logger.warning(
                    "access re-check failed after an access change; ending the stream", exc_info=True
                )
                code = (
                    DATABASE_UNAVAILABLE_CODE if is_database_unavailable(error) else "INTERNAL_SERVER_ERROR"
                )
                lost = AccessLost(code, UNVERIFIABLE_MESSAGE)
            if lost is not None:
                self._lose(lost)

    def _lose(self, lost: AccessLost) -> None:
        self._lost = lost
        task = self._waiting_task
        if task is not None and self._cancelling is None:
            # The stream is idle inside its generator: interrupt it the way asyncio.timeout
            # does (cancel, then uncancel in guard()), so it ends now rather than at its next
            # event — which may never come.
            self._cancelling = task.cancelling()
            task.cancel()

    async def run(self) -> None:
        """Re-check on concerning access changes and on the timer, until access is lost."""
        while self._lost is None:
            period = RECHECK_SECONDS * (1 + RECHECK_JITTER * (2 * random.random() - 1))
            due = False
            try:
                async with asyncio.timeout(period):
                    await self._changes.wait_pending()
            except TimeoutError:
                due = True
            try:
                await self.settle(due=due)
            except Exception:
                logger.warning(
                    "periodic access re-check failed; retrying in %.0f s", RETRY_SECONDS, exc_info=True
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def ensure(self) -> None:
        """Raise AccessLost if access is gone, settling delivered access changes first."""
        if self._lost is None and (self._changes.pending or self._lock.locked()):
            await self.settle()
        if self._lost is not None:
            raise self._lost

    async def guard(self, events: AsyncIterator[T]) -> AsyncIterator[T]:
        """Relay `events` while access lasts; raises AccessLost when it ends."""
        task = asyncio.current_task()
        assert task is not None
        try:
            while True:
                if self._lost is not None:
                    raise self._lost
                self._waiting_task = task
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    if self._cancelling is not None:  # our interrupt landed in its clean-up
                        task.uncancel()
                    if self._lost is not None:
                        raise self._lost from None
                    return
                except asyncio.CancelledError:
                    if self._cancelling is not None and task.uncancel() <= self._cancelling:
                        assert self._lost is not None
                        raise self._lost from None
                    raise
                finally:
                    self._waiting_task = None
                # An access change delivered before this event was published is settled
                # before the event goes out (one bus, in order: it is already waiting here).
                # Inlined fast path: no coroutine per event when nothing is waiting.
                if self._lost is not None or self._changes.pending or self._lock.locked():
                    await self.ensure()
                yield event
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def watch_access(
    bus: EventBus,
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    *,
    check: AccessCheck,
    lost_message: str,
    model_ids: tuple[uuid.UUID, ...] = (),
    personal_token: TokenGrant | None = None,
) -> AsyncIterator[AccessWatch]:
    """Watch `user`'s access for one subscription. Enter it BEFORE the subscription's own
    initial access check: a change committed after that check is then always seen."""
    async with bus.subscribe(ACCESS_CHANNEL) as changes:
        watch = AccessWatch(sessionmaker, changes, user, check, lost_message, set(model_ids), personal_token)
        runner = asyncio.create_task(watch.run(), name=f"access-watch:{user.id}")
        try:
            yield watch
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
