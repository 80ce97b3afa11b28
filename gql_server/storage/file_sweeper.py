"""Deleting stored files after the rows that referenced them are gone.

Whoever deletes rows with files inserts the paths into `pending_file_deletions` in the
same transaction. After the commit, the sweeper unlinks each file and then deletes its
row. The rows persist, so a crash between commit and unlink is repaired by the sweep
that runs at the next start-up.

A path in the outbox is either relative to the files dir (`documents/<id>.pdf`, as
`documents.storage_path` stores it; a model delete copies those) or absolute. Relative
paths are resolved against the files dir — never the process's working directory, which
for `ragql serve` is wherever it was started — so a sweep without a files dir (a caller
that has none) leaves them to the lifespan's sweeper. "Not found" counts as deleted only
when the files dir itself is there: an unmounted volume is not a deleted file.

At start-up the sweeper also removes files in `files/documents` that no document row
refers to (a crash between storing an upload and committing its row), once they are old
enough that no upload can still be committing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_server.db.models import Document, PendingFileDeletion
from gql_server.documents.storage import DOCUMENTS_DIR, resolve_under
from gql_server.storage.chunk_partitions import drop_orphan_chunk_partitions

logger = logging.getLogger(__name__)
BATCH_SIZE = 500
# An upload's file is moved into files/documents a moment before its row commits; a file
# without a row younger than this may be one of those.
ORPHAN_MIN_AGE_SECONDS = 600.0


def _unlink(path: Path, files_dir: Path | None) -> bool:
    """True when the file is gone (removed now, or already missing)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        if files_dir is not None and not files_dir.is_dir():
            logger.warning("files directory %s is missing; keeping %s queued for deletion", files_dir, path)
            return False
        return True
    except OSError as error:
        logger.warning("could not delete stored file %s: %s (will retry)", path, error)
        return False
    return True


def _outbox_target(stored: str, files_dir: Path | None) -> Path | None:
    """The absolute path an outbox row means; None when it cannot be resolved here."""
    if os.path.isabs(stored):
        return Path(stored)
    if files_dir is None:
        return None
    return resolve_under(files_dir, stored)


async def sweep_pending_file_deletions(
    sessionmaker: async_sessionmaker[AsyncSession], files_dir: Path | None = None
) -> int:
    """Delete every pending file; returns how many were removed. Files that cannot be
    deleted (permissions, I/O errors) keep their row and are retried by the next sweep;
    relative paths wait for a sweep that knows `files_dir`."""
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
            for row_id, stored in rows:
                try:
                    target = _outbox_target(stored, files_dir)
                except ValueError:
                    # Never ours to delete (it would leave the files dir): drop the row, keep the file.
                    logger.warning("ignoring queued deletion of %r: outside the files directory", stored)
                    done.append(row_id)
                    continue
                if target is not None and await asyncio.to_thread(_unlink, target, files_dir):
                    done.append(row_id)
            if done:
                await session.execute(delete(PendingFileDeletion).where(PendingFileDeletion.id.in_(done)))
            removed += len(done)


def _old_document_files(files_dir: Path, min_age: float) -> dict[uuid.UUID, list[Path]]:
    directory = files_dir / DOCUMENTS_DIR
    found: dict[uuid.UUID, list[Path]] = {}
    if not directory.is_dir():
        return found
    cutoff = time.time() - min_age
    for entry in os.scandir(directory):
        try:
            document_id = uuid.UUID(entry.name.split(".", 1)[0])
            if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime > cutoff:
                continue
        except (ValueError, OSError):
            continue  # not named like ours, or gone meanwhile
        found.setdefault(document_id, []).append(Path(entry.path))
    return found


async def remove_orphan_document_files(
    sessionmaker: async_sessionmaker[AsyncSession], files_dir: Path, min_age: float = ORPHAN_MIN_AGE_SECONDS
) -> int:
    """Remove files in files/documents whose document row does not exist."""
    candidates = await asyncio.to_thread(_old_document_files, files_dir, min_age)
    ids = list(candidates)
    removed = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        async with sessionmaker() as session:
            existing = set((await session.scalars(select(Document.id).where(Document.id.in_(batch)))).all())
        for document_id in batch:
            if document_id in existing:
                continue
            for path in candidates[document_id]:
                if await asyncio.to_thread(_unlink, path, files_dir):
                    removed += 1
    if removed:
        logger.info("removed %d stored file(s) that no document refers to", removed)
    return removed


class FileSweeper:
    """Runs a sweep at start-up and whenever `wake()` is called (after each delete):
    pending files, then the chunk partitions of deleted models (`chunk_partitions`)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine | None = None,
        files_dir: Path | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._engine = engine
        self._files_dir = files_dir
        self._orphans_checked = False
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
                removed = await sweep_pending_file_deletions(self._sessionmaker, self._files_dir)
                if removed:
                    logger.info("deleted %d stored file(s)", removed)
                if self._files_dir is not None and not self._orphans_checked:
                    await remove_orphan_document_files(self._sessionmaker, self._files_dir)
                    self._orphans_checked = True  # once per start-up: it lists the whole directory
                if self._engine is not None:
                    dropped = await drop_orphan_chunk_partitions(self._engine)
                    if dropped:
                        logger.info("dropped %d chunk partition(s) of deleted models", dropped)
            except Exception:
                logger.exception("storage sweep failed; it will run again on the next delete or start-up")
            self.sweeps += 1


@contextlib.asynccontextmanager
async def running_file_sweeper(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine, files_dir: Path
) -> AsyncIterator[FileSweeper]:
    """The sweeper, running in the background (its first sweep at start-up) until exit."""
    sweeper = FileSweeper(sessionmaker, engine, files_dir)
    task = asyncio.create_task(sweeper.run(), name="file-sweeper")
    try:
        yield sweeper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def request_file_sweep(state: HasFileSweeper) -> None:
    """Call after a commit that queued files."""
    state.file_sweeper.wake()


class HasFileSweeper(Protocol):
    @property
    def file_sweeper(self) -> FileSweeper: ...
