"""Database errors do not list bound parameter values in exceptions (and so in logged tracebacks).

Only SQLAlchemy's own `[parameters: ...]` part can be hidden; a value PostgreSQL itself quotes in
its message (invalid input syntax for the value) still appears — masking keeps those from clients.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gql_server.db.engine import create_engine

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_failing_statement_does_not_show_its_parameters(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(
                    text("SELECT CAST(:value AS text), 1 / 0"), {"value": "secret-value-4711"}
                )
        assert "secret-value-4711" not in str(raised.value)
        assert "SELECT CAST" in str(raised.value) and "division by zero" in str(raised.value)
    finally:
        await engine.dispose()
