"""Bring the database up: embedded server or DATABASE_URL, pgvector, migrations.

Shared by `ragql serve`, `ragql worker`, `ragql migrate` and the tests, so every entry
point prepares the database the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_server.db.embedded import EmbeddedPostgres, EmbeddedSupervisor
from gql_server.db.engine import (
    DatabaseNotReady,
    create_engine,
    create_sessionmaker,
    ensure_pgvector,
)
from gql_server.db.migrate import current_revision, head_revision, upgrade_to_head
from gql_server.settings import Settings
from gql_server.storage.permissions import secure_data_dir

logger = logging.getLogger(__name__)


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    embedded: EmbeddedPostgres | None
    _supervisor: asyncio.Task[None] | None = field(default=None, repr=False)

    def supervise_embedded(self) -> None:
        """Keep the embedded server running for as long as this Database is open (`ragql
        serve`): started again when its postmaster dies. No-op with DATABASE_URL."""
        if self.embedded is not None and self._supervisor is None:
            self._supervisor = asyncio.create_task(
                EmbeddedSupervisor(self.embedded).run(), name="embedded-postgres-supervisor"
            )

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self.engine.dispose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


async def open_database(settings: Settings, *, migrate: bool, pool_size: int = 20) -> Database:
    embedded: EmbeddedPostgres | None = None
    await asyncio.to_thread(secure_data_dir, settings)
    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.database_dir)
        url = await asyncio.to_thread(embedded.start)
        logger.info("embedded PostgreSQL ready in %s", settings.database_dir)
        # pgserver widens the data dir's mode on every start (as root, so its `pgserver`
        # user can reach postgres/): narrow it again.
        await asyncio.to_thread(lambda: secure_data_dir(settings, root_only=True))
    else:
        url = settings.database_url.get_secret_value()
    engine = create_engine(url, pool_size=pool_size)
    try:
        await ensure_pgvector(engine)
        if migrate:
            await asyncio.to_thread(upgrade_to_head, url)
        else:
            current, head = await current_revision(engine), head_revision()
            if current != head:
                raise DatabaseNotReady(
                    f"The database schema is at revision {current} but this version needs {head}; "
                    "run `ragql migrate`."
                )
    except BaseException:
        await engine.dispose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    return Database(url=url, engine=engine, sessionmaker=create_sessionmaker(engine), embedded=embedded)
