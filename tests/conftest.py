"""Test fixtures: a real embedded PostgreSQL + pgvector, one fresh database per test.

The schema is built once by running the Alembic migrations into a template database;
each test gets `CREATE DATABASE ... TEMPLATE` — real isolation that also holds for the
server, the in-process workers and worker subprocesses that a test starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from gql_server.app import create_app
from gql_server.db.embedded import EmbeddedPostgres
from gql_server.db.migrate import upgrade_to_head
from gql_server.settings import Settings
from tests import log_secrets
from tests.graphql_client import GraphQLClient

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUPERADMIN_EMAIL = "root@example.com"
SUPERADMIN_PASSWORD = "superadmin-password-1"
TEMPLATE_DATABASE = "ragql_template"


def pytest_configure(config: pytest.Config) -> None:
    # The whole run's log, formatted and redacted as production does (tests/log_secrets.py).
    log_secrets.install_log_capture()


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    """After the last test: no token, password or key the run issued or sent is in any log
    line of the run (in-process servers and every `ragql serve` subprocess). Fails the run
    with an error at teardown otherwise."""
    yield
    findings, checked, size = log_secrets.leaks()
    print(f"\nlog secrets check: {checked} secrets against {size / 1e6:.1f} MB of log")
    log_secrets.remove_log_file()
    assert not findings, "secrets in the logs of this run:\n" + "\n".join(findings[:20])


def shared_data_path(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"{path} is not present: the shared data set (../shared/data) is only in the full workspace"
        )
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    # A short path: PostgreSQL's unix socket path must stay under ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix="ragql-pg-"))
    server = EmbeddedPostgres(root / "pg")
    server.start()
    server.psql(f"CREATE DATABASE {TEMPLATE_DATABASE};")
    upgrade_to_head(server.url(TEMPLATE_DATABASE))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database_url(postgres_server: EmbeddedPostgres) -> Iterator[str]:
    name = "t_" + uuid.uuid4().hex[:16]
    postgres_server.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE};")
    yield postgres_server.url(name)
    postgres_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        database_url=database_url,  # type: ignore[arg-type]
        redis_url=None,
        secret_key="test-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        superadmin_email=SUPERADMIN_EMAIL,
        superadmin_password=SUPERADMIN_PASSWORD,  # type: ignore[arg-type]
        migrate_on_start=False,
        allow_private_provider_urls=True,  # the fake LLM servers listen on 127.0.0.1
        # The default follows the cores (INGEST_CONCURRENCY); the ordering tests assume one slot a lane.
        ingest_concurrency=1,
    )


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own (nothing shared with other tests' keys)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@dataclass
class RunningServer:
    base_url: str
    app: object
    settings: Settings
    client: GraphQLClient

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.app.state.app_state  # type: ignore[attr-defined]


async def serve_until_started(config: uvicorn.Config) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve `config` on the current event loop; return once it accepts connections, raising
    what the server raised if it stopped before that. The deadline (120 s) is generous: it
    only turns a hung start-up into a failure on a slow, shared machine."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(2400):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("server did not start")
    return server, task


async def start_server(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None], object, str]:
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", ws="websockets-sansio"
    )
    server, task = await serve_until_started(config)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, app, f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    """A real uvicorn server with the real app on a free port."""
    uvicorn_server, task, app, base_url = await start_server(settings)
    async with httpx.AsyncClient(timeout=60) as http:
        yield RunningServer(base_url, app, settings, GraphQLClient(base_url, http))
    uvicorn_server.should_exit = True
    await asyncio.wait_for(task, 30)


LOG_IN = """
mutation LogIn($email: String!, $password: String!) {
  logIn(email: $email, password: $password) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id email role } }
    ... on Error { message }
    ... on InvalidCredentials { message }
  }
}
"""

SIGN_UP = """
mutation SignUp($email: String!, $password: String!, $displayName: String) {
  signUp(email: $email, password: $password, displayName: $displayName) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id email role } }
    ... on Error { message }
    ... on SignUpDisabled { message }
  }
}
"""


async def log_in(client: GraphQLClient, email: str, password: str) -> GraphQLClient:
    data = await client.execute(LOG_IN, {"email": email, "password": password})
    assert data["logIn"]["__typename"] == "AuthPayload", data
    return client.with_token(data["logIn"]["accessToken"])


async def sign_up(client: GraphQLClient, email: str, password: str = "user-password-1") -> GraphQLClient:
    data = await client.execute(SIGN_UP, {"email": email, "password": password})
    assert data["signUp"]["__typename"] == "AuthPayload", data
    return client.with_token(data["signUp"]["accessToken"])


@pytest_asyncio.fixture
async def superadmin(server: RunningServer) -> GraphQLClient:
    return await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
