"""Engine and sessionmaker construction, and the start-up checks on the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


class DatabaseNotReady(RuntimeError):
    """The configured database cannot serve ragql (unreachable, or pgvector missing)."""


def normalise_database_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


# Session defaults of every connection the engine opens, sent in the connection's start-up
# packet (no round trip): pgvector's HNSW scan settings that retrieval uses. With them in
# place a retrieval skips its own transaction-local set_config statement (one statement less
# on each of its two connections); `CONNECTION_SETTINGS_KEY` in the connection's info says
# which defaults a connection carries, so a connection without them still gets them set.
SEARCH_CONNECTION_SETTINGS = {"hnsw.iterative_scan": "relaxed_order", "hnsw.ef_search": "200"}
CONNECTION_SETTINGS_KEY = "ragql_server_settings"


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 30, pool_timeout: float = 60.0
) -> AsyncEngine:
    # Up to pool_size + 30 connections (PostgreSQL's default max_connections is 100, shared with the
    # worker). Beyond that, requests wait for a connection (up to pool_timeout) rather than
    # fail: a burst of 500 sendMessage calls queues instead of erroring.
    engine = create_async_engine(
        normalise_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        # A failing statement's exception (and so any traceback in the server log) shows the
        # SQL but never the bound values: they are passwords' hashes, message text, queries.
        hide_parameters=True,
        connect_args={"server_settings": dict(SEARCH_CONNECTION_SETTINGS)},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _record_settings(_dbapi_connection: Any, record: Any) -> None:
        record.info[CONNECTION_SETTINGS_KEY] = dict(SEARCH_CONNECTION_SETTINGS)

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ensure_pgvector(engine: AsyncEngine) -> None:
    """Create the vector extension, or fail with a message that says what to do."""
    try:
        async with engine.begin() as connection:
            available = await connection.scalar(
                text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
            )
            if not available:
                raise DatabaseNotReady(
                    "The PostgreSQL server at DATABASE_URL does not have the pgvector extension installed. "
                    "Install pgvector (https://github.com/pgvector/pgvector) or use the pgvector/pgvector "
                    "image, or unset DATABASE_URL to use the embedded database."
                )
            await connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DatabaseNotReady:
        raise
    except Exception as error:
        raise DatabaseNotReady(f"Cannot use the database: {error}") from error
