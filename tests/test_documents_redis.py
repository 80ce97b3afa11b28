"""Redis mode: `ragql worker` processes consume the stream; a worker killed mid-document
loses its message to the next worker after one lease, and the document ends READY once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from gql_server.settings import Settings
from tests.conftest import (
    SUPERADMIN_EMAIL,
    SUPERADMIN_PASSWORD,
    RunningServer,
    log_in,
    start_server,
)
from tests.document_helpers import chunk_rows, follow_progress, upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient
from tests.pdf_factory import text_pdf
from tests.redis_support import redis_available

pytestmark = [pytest.mark.asyncio, pytest.mark.redis, pytest.mark.shared_data]

REDIS_URL = "redis://127.0.0.1:6379/0"
RAGQL = str(Path(sys.executable).with_name("ragql"))
LEASE_SECONDS = "3"


@pytest_asyncio.fixture
async def redis_server(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningServer, dict[str, str]]]:
    if not redis_available(REDIS_URL):
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    queue = f"ragql:test:{uuid.uuid4().hex[:12]}"
    # The server's stream and lease are settings; the worker below reads the same from its
    # environment (by their older RAGQL_ names, which stay accepted).
    redis_settings = settings.model_copy(
        update={"redis_url": REDIS_URL, "task_queue": queue, "task_lease_seconds": float(LEASE_SECONDS)}
    )
    uvicorn_server, task, app, base_url = await start_server(redis_settings)
    worker_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DATABASE_URL": redis_settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "REDIS_URL": REDIS_URL,
        "RAGQL_TASK_QUEUE": queue,
        "RAGQL_TASK_LEASE_SECONDS": LEASE_SECONDS,
        "SECRET_KEY": redis_settings.secret_key.get_secret_value(),  # type: ignore[union-attr]
        "DATA_DIR": str(redis_settings.data_dir),
    }
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            yield RunningServer(base_url, app, redis_settings, GraphQLClient(base_url, http)), worker_env
    finally:
        uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 30)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue)
        client.close()


def _start_worker(env: dict[str, str], data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [RAGQL, "worker", "--data-dir", str(data_dir), "--concurrency", "1"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL takes the PDF reader child too
    )


def _kill(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signum)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            # A worker mid-embedding can take longer than 30 s to stop gracefully; a
            # test must never leave one running (it would slow every later test).
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


async def _status(server: RunningServer, document_id: str) -> tuple[str, float]:
    async with server.state.sessionmaker() as session:
        row = (
            await session.execute(
                text("SELECT status, progress FROM documents WHERE id = :id"), {"id": document_id}
            )
        ).one()
    return str(row.status), float(row.progress)


def _document_to_ingest() -> tuple[str, bytes]:
    """A PDF built in code, long enough (400 pages of distinct prose, a few minutes of
    embedding on 2 cores) that the worker is reliably killed mid-document — the shared
    PDFs are too short for that since ingestion got faster."""
    topics = ["roads", "schools", "parks", "water", "housing", "transit", "libraries"]
    pages = [
        [
            f"Section {page}.{line}: the committee reviewed budget item {page * 31 + line} "
            f"covering {topics[(page + line) % len(topics)]} in district {page % 17}, "
            f"with {line * 3 + page % 11} objections recorded and a vote of {page % 9} to {line % 7}."
            for line in range(40)
        ]
        for page in range(1, 401)
    ]
    return "generated-report.pdf", text_pdf(pages)


@pytest.mark.timeout(600)
async def test_worker_killed_mid_document_is_redelivered_without_duplicates(
    redis_server: tuple[RunningServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = redis_server
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    model = await create_model(server.state.sessionmaker)
    name, content = _document_to_ingest()
    document_id = await upload_document(admin, model.id, name, content)
    progress = asyncio.create_task(follow_progress(admin, document_id, timeout=400))
    log = tmp_path / "workers.log"
    first = _start_worker(env, server.settings.data_dir, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 180
        while True:
            status, fraction = await _status(server, document_id)
            if status in ("CHUNKING", "EMBEDDING") or (status == "PARSING" and fraction > 0):
                break
            assert first.poll() is None, log.read_text()
            assert status not in ("READY", "FAILED"), f"finished before it could be killed: {status}"
            assert time.monotonic() < deadline, f"the worker never started the document:\n{log.read_text()}"
            await asyncio.sleep(0.2)
        _kill(first, signal.SIGKILL)
        killed_status, _ = await _status(server, document_id)
        assert killed_status not in ("READY", "FAILED")
        second = _start_worker(env, server.settings.data_dir, log)
        document = await wait_for_final(admin, document_id, timeout=400)
        assert document["status"] == "READY", (document, log.read_text())
        assert document["attempts"] >= 2, document
        chunks = await chunk_rows(server.state.sessionmaker, document_id)
        indexes = [chunk["chunk_index"] for chunk in chunks]
        assert len(chunks) == document["chunkCount"] > 0
        assert indexes == list(range(len(chunks))), "no duplicate and no missing chunk"
        assert len({chunk["text"] for chunk in chunks}) >= len(chunks) * 0.9
        # Progress from the worker processes reached the API's subscriber through Redis pub/sub.
        events = await asyncio.wait_for(progress, 60)
        assert events[-1]["status"] == "READY", events
        assert {"QUEUED", "READY"} <= {event["status"] for event in events}
    finally:
        progress.cancel()
        _kill(first, signal.SIGKILL)
        if second is not None:
            _kill(second, signal.SIGTERM)
