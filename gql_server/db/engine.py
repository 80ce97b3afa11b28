"""Engine and sessionmaker construction, and the start-up checks on the database."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


class DatabaseNotReady(RuntimeError):
    """The configured database cannot serve ragql (unreachable, or pgvector missing)."""


def normalise_database_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 30, pool_timeout: float = 60.0
) -> AsyncEngine:
    # Up to pool_size + 30 connections (PostgreSQL's default max_connections is 100, shared with the
    # worker). Beyond that, requests wait for a connection (up to pool_timeout) rather than
    # fail: a burst of 500 sendMessage calls queues instead of erroring.
    return create_async_engine(
        normalise_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        # A failing statement's exception (and so any traceback in the server log) shows the
        # SQL but never the bound values: they are passwords' hashes, message text, queries.
        hide_parameters=True,
    )


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
