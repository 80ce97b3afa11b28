"""One transaction, retried when PostgreSQL picks it as a deadlock victim.

PostgreSQL resolves a lock cycle by failing one participant with SQLSTATE 40P01 and
recommends retrying it. The cycles we know of involve the chunk partitions: a model insert's
trigger ATTACHes the model's partition while the storage sweeper DETACHes a deleted model's
partition CONCURRENTLY (which waits for older transactions, while ATTACH waits for its lock
on the parent table); concurrent creations are ordered by a lock (models/repository.py
lock_chunk_partition_ddl), the sweeper's side is what is left. Retrying the victim's whole
transaction is safe because nothing of it was committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

DEADLOCK_DETECTED = "40P01"
ATTEMPTS = 4


def is_deadlock(error: BaseException) -> bool:
    if not isinstance(error, DBAPIError):
        return False
    return getattr(error.orig, "sqlstate", None) == DEADLOCK_DETECTED


async def in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run `work` in one `sessionmaker.begin()` transaction; run it again (a few times,
    with a short growing pause) when the transaction was a deadlock victim."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with sessionmaker.begin() as session:
                return await work(session)
        except DBAPIError as error:
            if attempt == ATTEMPTS or not is_deadlock(error):
                raise
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
