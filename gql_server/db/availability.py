"""Is an exception "the database is unavailable" (as opposed to a bug)?

Shared by the GraphQL error masking (a resolver that hits a dead database answers with a
DATABASE_UNAVAILABLE error instead of a masked INTERNAL_SERVER_ERROR), the request-context
builder (authentication reads the user row) and the embedded server's supervisor.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable right now; try again in a few seconds."
DATABASE_UNAVAILABLE_CODE = "DATABASE_UNAVAILABLE"


class DatabaseUnavailable(Exception):
    """Raised (from the connection-level error) where a caller must tell "the database is
    down" apart from a bug without inspecting the error itself: each door answers it in its
    own protocol (a typed GraphQL error, HTTP 503), never a bare 500."""


def is_database_unavailable(error: BaseException | None) -> bool:
    """True for connection-level failures: refused/reset connections, a server shutting down,
    pool exhaustion. False for statement errors (constraint violations, bad SQL), which are bugs
    or expected failures handled elsewhere."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (OperationalError, InterfaceError, PoolTimeoutError)):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, (ConnectionError, asyncio.TimeoutError)) and not isinstance(
            error, asyncio.CancelledError
        ):
            return True
        if isinstance(error, OSError) and error.errno in _CONNECTION_ERRNOS:
            return True
        module = type(error).__module__ or ""
        name = type(error).__name__
        if module.startswith("asyncpg") and name in _ASYNCPG_UNAVAILABLE:
            return True
        error = error.__cause__ or error.__context__
    return False


# ECONNREFUSED, ECONNRESET, ENOENT (unix socket gone), EPIPE, ETIMEDOUT
_CONNECTION_ERRNOS = {111, 104, 2, 32, 110}
_ASYNCPG_UNAVAILABLE = {
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "AdminShutdownError",
    "CrashShutdownError",
    "TooManyConnectionsError",
    "InterfaceError",
    "InternalClientError",
}
