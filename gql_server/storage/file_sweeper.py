"""Deleting stored files after the rows that referenced them are gone.

Whoever deletes rows with files inserts the paths into `pending_file_deletions` in the
same transaction. After the commit, the sweeper unlinks each file and then deletes its
row. The rows persist, so a crash between commit and unlink is repaired by the sweep
that runs at the next start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_server.db.models import PendingFileDeletion
from gql_server.state import AppState
from gql_server.storage.chunk_partitions import drop_orphan_chunk_partitions

logger = logging.getLogger(__name__)
BATCH_SIZE = 500
EXTRAS_KEY = "file_sweeper"


def _unlink(path: str) -> bool:
    """True when the file is gone (removed now, or already missing)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError as error:
        logger.warning("could not delete stored file %s: %s (will retry)", path, error)
        return False
    return True


async def sweep_pending_file_deletions(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Delete every pending file; returns how many were removed. Files that cannot be
    deleted (permissions, I/O errors) keep their row and are retried by the next sweep."""
    removed = 0
    last_id = 0
    while True:
        async with sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    select(PendingFileDeletion.id, PendingFileDeletion.path)
                    .where(PendingFileDeletion.id > last_id)
                    .order_by(PendingFileDeletion.id)
                    .limit(BATCH_SIZE)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return removed
            last_id = rows[-1][0]
            done = []
            for row_id, path in rows:
                if await asyncio.to_thread(_unlink, path):
                    done.append(row_id)
            if done:
                await session.execute(delete(PendingFileDeletion).where(PendingFileDeletion.id.in_(done)))
            removed += len(done)


class FileSweeper:
    """Runs a sweep at start-up and whenever `wake()` is called (after each delete):
    pending files, then the chunk partitions of deleted models (`chunk_partitions`)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine | None = None
    ) -> None:
        self._sessionmaker = sessionmaker
        self._engine = engine
        self._wanted = asyncio.Event()
        self._wanted.set()  # sweep once at start-up
        self.sweeps = 0

    def wake(self) -> None:
        self._wanted.set()

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                removed = await sweep_pending_file_deletions(self._sessionmaker)
                if removed:
                    logger.info("deleted %d stored file(s)", removed)
                if self._engine is not None:
                    dropped = await drop_orphan_chunk_partitions(self._engine)
                    if dropped:
                        logger.info("dropped %d chunk partition(s) of deleted models", dropped)
            except Exception:
                logger.exception("storage sweep failed; it will run again on the next delete or start-up")
            self.sweeps += 1


@contextlib.asynccontextmanager
async def file_sweeper_lifespan(state: AppState) -> AsyncIterator[None]:
    sweeper = FileSweeper(state.sessionmaker, state.engine)
    state.extras[EXTRAS_KEY] = sweeper
    task = asyncio.create_task(sweeper.run(), name="file-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        state.extras.pop(EXTRAS_KEY, None)


def request_file_sweep(state: AppState) -> None:
    """Call after a commit that queued files. Without the lifespan hook (scripts), the
    rows simply wait for the next start-up sweep."""
    sweeper = state.extras.get(EXTRAS_KEY)
    if isinstance(sweeper, FileSweeper):
        sweeper.wake()
