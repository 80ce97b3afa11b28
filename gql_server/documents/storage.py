"""Where uploaded files live on disk.

Everything sits under `settings.files_dir` so an upload's temporary file and its final
place are on the same filesystem: accepting an upload is an `os.replace`, never a copy.
Rows store paths relative to `files_dir`, so a data dir can move.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from pathlib import Path

from gql_server.settings import Settings

logger = logging.getLogger(__name__)

INCOMING_DIR = "incoming"
DOCUMENTS_DIR = "documents"
SPOOL_DIR = "spool"

_EXTENSIONS = {"PDF": ".pdf", "CSV": ".csv", "TEXT": ".txt"}


def incoming_dir(settings: Settings) -> Path:
    path = settings.files_dir / INCOMING_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def spool_dir(settings: Settings) -> Path:
    path = settings.files_dir / SPOOL_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def document_relative_path(document_id: uuid.UUID, kind_name: str) -> str:
    return f"{DOCUMENTS_DIR}/{document_id}{_EXTENSIONS.get(kind_name, '')}"


def resolve_storage_path(settings: Settings, relative: str) -> Path:
    """The absolute path of a stored file; refuses anything that would leave files_dir."""
    root = settings.files_dir.resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"storage path {relative!r} is outside the files directory")
    return path


def move_into_place(source: Path, settings: Settings, relative: str) -> Path:
    target = resolve_storage_path(settings, relative)
    target.parent.mkdir(parents=True, exist_ok=True)
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
