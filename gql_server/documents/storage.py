"""Where uploaded files live on disk.

Everything sits under `settings.files_dir` so an upload's temporary file and its final
place are on the same filesystem: accepting an upload is an `os.replace`, never a copy.
Rows store paths relative to `files_dir`, so a data dir can move.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
import uuid
from pathlib import Path

from gql_server.settings import Settings
from gql_server.storage.permissions import make_private_dir

logger = logging.getLogger(__name__)

INCOMING_DIR = "incoming"
DOCUMENTS_DIR = "documents"
SPOOL_DIR = "spool"

_EXTENSIONS = {"PDF": ".pdf", "CSV": ".csv", "TEXT": ".txt"}


def incoming_dir(settings: Settings) -> Path:
    return make_private_dir(settings.files_dir / INCOMING_DIR)


def spool_dir(settings: Settings) -> Path:
    return make_private_dir(settings.files_dir / SPOOL_DIR)


def document_relative_path(document_id: uuid.UUID, kind_name: str) -> str:
    return f"{DOCUMENTS_DIR}/{document_id}{_EXTENSIONS.get(kind_name, '')}"


def resolve_storage_path(settings: Settings, relative: str) -> Path:
    """The absolute path of a stored file; refuses anything that would leave files_dir."""
    return resolve_under(settings.files_dir, relative)


def resolve_under(files_dir: Path, relative: str) -> Path:
    """`relative` resolved against files_dir (never the working directory); ValueError when
    the result would leave files_dir."""
    root = files_dir.resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"storage path {relative!r} is outside the files directory")
    return path


def move_into_place(source: Path, settings: Settings, relative: str) -> Path:
    target = resolve_storage_path(settings, relative)
    make_private_dir(target.parent)
    os.replace(source, target)  # same filesystem: O(1) whatever the size
    return target


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def remove_stale_files(directory: Path, older_than_seconds: float) -> int:
    """Remove leftovers of killed processes (partial uploads, spool files)."""
    if not directory.exists():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for entry in directory.iterdir():
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        logger.info("removed %d stale file(s) from %s", removed, directory)
    return removed


# ENOSPC, EDQUOT (quota), EFBIG (RLIMIT_FSIZE); PostgreSQL's disk_full SQLSTATE.
_STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_DISK_FULL_SQLSTATE = "53100"
DISK_FULL_MESSAGE = "The server's disk is full; ask an administrator to free space, then re-index."


def is_storage_full(error: BaseException | None) -> bool:
    """Whether `error` (or what caused it) is the disk, a quota or a file-size limit
    refusing more bytes — ours (spool, uploads) or PostgreSQL's (COPY into a full disk)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _STORAGE_FULL_ERRNOS:
            return True
        if getattr(error, "sqlstate", None) == _DISK_FULL_SQLSTATE:
            return True
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return False
