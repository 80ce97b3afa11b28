"""`ragql serve` as a real process: first start initialises, a restart reuses everything."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.serve_process import ServeProcess

SIGN_UP = 'mutation { signUp(email: "keep@example.com", password: "durable-secret-1") { __typename } }'
LOG_IN = (
    'mutation { logIn(email: "keep@example.com", password: "durable-secret-1") '
    "{ __typename ... on AuthPayload { user { email } } } }"
)


def _graphql(base_url: str, query: str) -> dict:
    response = httpx.post(base_url + "/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


@pytest.mark.slow
def test_restart_reuses_the_embedded_database_and_keeps_accounts() -> None:
    # Not pytest's tmp_path: as root, pgserver runs PostgreSQL as the `pgserver` user, which
    # must traverse every parent directory, and pytest keeps /tmp/pytest-of-<user> at 0700.
    root = Path(tempfile.mkdtemp(prefix="ragql-restart-"))
    try:
        _restart_scenario(root / "data")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _restart_scenario(data_dir: Path) -> None:
    first = ServeProcess(data_dir).start()
    try:
        assert "superadmin created" in first.output()
        assert _graphql(first.base_url, SIGN_UP)["signUp"]["__typename"] == "AuthPayload"
    finally:
        assert first.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a graceful shutdown
    assert "Application shutdown complete" in first.output()
    # Shut down cleanly: the embedded PostgreSQL stopped with the server.
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    secret = (data_dir / "secret_key").read_text()

    second = ServeProcess(data_dir).start()
    try:
        assert "superadmin created" not in second.output(), "the superadmin is bootstrapped only once"
        assert "Initializing pgdata" not in second.output()
        login = _graphql(second.base_url, LOG_IN)["logIn"]
        assert login["__typename"] == "AuthPayload"
        assert login["user"]["email"] == "keep@example.com"
        assert (data_dir / "secret_key").read_text() == secret
        print(
            f"restart took {second.started_in_seconds:.2f} s (first start {first.started_in_seconds:.2f} s)"
        )
    finally:
        assert second.stop() in (0, -15)
