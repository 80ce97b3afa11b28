"""Fairness of ingestion (issue 10): lanes, round-robin over users, attachment quota, CSV shape.

One first-come-first-served queue let one user's chat attachments delay an admin's
40-byte model document by minutes, and a 0.6 MB CSV with 50,000 columns embedded for 4+
minutes. These tests measure the order in which documents are ingested (from the rows'
processing_started_at / processed_at), not wall time.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select, text

from gql_server.db.models import Document
from gql_server.settings import Settings
from tests.chat_support import chat_world, start_session
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, start_server
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient
from tests.test_documents_redis import REDIS_URL, _kill, _start_worker, redis_server  # noqa: F401 (a fixture)

pytestmark = pytest.mark.asyncio

ATTACH = """
mutation Attach($sessionId: UUID!, $file: Upload!) {
  attachFile(sessionId: $sessionId, file: $file) {
    __typename
    ... on DocumentUploaded { document { id status } }
    ... on StorageQuotaExceeded { message limitBytes usedBytes }
    ... on Error { message }
  }
}
"""

# The ordering tests ask only for members that existed before the quota.
ATTACH_PLAIN = """
mutation Attach($sessionId: UUID!, $file: Upload!) {
  attachFile(sessionId: $sessionId, file: $file) {
    __typename ... on DocumentUploaded { document { id status } } ... on Error { message }
  }
}
"""

TINY_MODEL_DOCUMENT = b"Barn owls hunt at night over meadows.\n"  # 38 bytes


def slow_text(seed: int, sentences: int = 150) -> bytes:
    """Distinct prose, a few seconds of chunking and embedding on 2 cores."""
    topics = ["rivers", "glaciers", "orchards", "harbours", "railways", "vineyards", "quarries"]
    lines = [
        f"Report {seed}.{n}: the survey of {topics[(seed + n) % len(topics)]} in region {n % 23} "
        f"found {n * 7 % 101} sites, of which {n % 13} needed repair before winter {2000 + n % 25}."
        for n in range(sentences)
    ]
    return ("\n".join(lines) + "\n").encode()


async def attach(client: GraphQLClient, session_id: str, filename: str, content: bytes) -> dict[str, Any]:
    body = await client.upload(ATTACH, {"sessionId": session_id}, "file", filename, content)
    assert body.get("data"), body
    return body["data"]["attachFile"]  # type: ignore[no-any-return]


async def attach_ok(client: GraphQLClient, session_id: str, filename: str, content: bytes) -> str:
    body = await client.upload(ATTACH_PLAIN, {"sessionId": session_id}, "file", filename, content)
    assert body.get("data"), body
    result = body["data"]["attachFile"]
    assert result["__typename"] == "DocumentUploaded", result
    return str(result["document"]["id"])


async def timings(server: RunningServer, ids: list[str]) -> dict[str, tuple[Any, Any, str]]:
    async with server.state.sessionmaker() as session:
        rows = await session.execute(
            select(Document.id, Document.processing_started_at, Document.processed_at, Document.status).where(
                Document.id.in_([uuid.UUID(i) for i in ids])
            )
        )
        return {str(r.id): (r.processing_started_at, r.processed_at, r.status.value) for r in rows}


async def wait_all_final(client: GraphQLClient, ids: list[str], timeout: float = 240) -> None:
    for document_id in ids:
        document = await wait_for_final(client, document_id, timeout)
        assert document["status"] == "READY", document


async def test_model_document_is_not_stuck_behind_attachments(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    assert server.settings.ingest_concurrency == 1
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    attachments = [
        await attach_ok(world.client, session_id, f"survey-{i}.txt", slow_text(i)) for i in range(3)
    ]
    model_document = await upload_document(superadmin, world.model.id, "owls.txt", TINY_MODEL_DOCUMENT)
    await wait_all_final(superadmin, [model_document])
    await wait_all_final(world.client, attachments)
    times = await timings(server, [*attachments, model_document])
    model_done = times[model_document][1]
    finished_before = [i for i in attachments if times[i][1] < model_done]
    # First come, first served: all 3 attachments finished first. With lanes the model
    # document runs beside the first attachment.
    assert len(finished_before) <= 1, times


async def test_two_users_attachments_take_turns(server: RunningServer) -> None:
    model = await create_model(server.state.sessionmaker)
    first = await chat_world(server, model=model)
    second = await chat_world(server, model=model)
    first_session = await start_session(first.client, model.id)
    second_session = await start_session(second.client, model.id)
    first_ids = [
        await attach_ok(first.client, first_session, f"first-{i}.txt", slow_text(10 + i, 60))
        for i in range(3)
    ]
    second_id = await attach_ok(second.client, second_session, "second.txt", slow_text(99, 60))
    await wait_all_final(first.client, first_ids)
    await wait_all_final(second.client, [second_id])
    times = await timings(server, [*first_ids, second_id])
    order = sorted(times, key=lambda i: times[i][0])
    # Round-robin: the second user's only attachment goes right after the first user's
    # first one (FIFO ran it last).
    assert order.index(second_id) == 1, [(i == second_id, times[i][0]) for i in order]


@pytest.mark.redis
@pytest.mark.timeout(600)
async def test_redis_worker_runs_model_documents_beside_attachments(
    redis_server: tuple[RunningServer, dict[str, str]],  # noqa: F811 (the imported fixture)
    tmp_path: Path,
) -> None:
    server, env = redis_server
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    attachments = [
        await attach_ok(world.client, session_id, f"survey-{i}.txt", slow_text(i)) for i in range(3)
    ]
    model_document = await upload_document(admin, world.model.id, "owls.txt", TINY_MODEL_DOCUMENT)
    # Everything is queued before the worker (concurrency 1) starts.
    log = tmp_path / "worker.log"
    worker = _start_worker(env, server.settings.data_dir, log)
    try:
        await wait_all_final(admin, [model_document], timeout=300)
        await wait_all_final(world.client, attachments, timeout=300)
    except AssertionError:
        raise AssertionError(log.read_text()) from None
    finally:
        _kill(worker, signal.SIGTERM)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(env["RAGQL_TASK_QUEUE"] + ":attachments")  # the fixture removes the other one
        client.close()
    times = await timings(server, [*attachments, model_document])
    model_done = times[model_document][1]
    finished_before = [i for i in attachments if times[i][1] < model_done]
    # One stream, first come first served: the 3 attachments finished first.
    assert len(finished_before) <= 1, times


@pytest_asyncio.fixture
async def small_quota_server(settings: Settings) -> AsyncIterator[RunningServer]:
    quota_settings = settings.model_copy(update={"attachment_quota_mb_per_user": 1})
    uvicorn_server, task, app, base_url = await start_server(quota_settings)
    async with httpx.AsyncClient(timeout=60) as http:
        yield RunningServer(base_url, app, quota_settings, GraphQLClient(base_url, http))
    uvicorn_server.should_exit = True
    await asyncio.wait_for(task, 30)


def _filler(seed: int, size: int) -> bytes:
    """A CSV of exactly `size` bytes, wider than CSV_MAX_COLUMNS: it counts against the
    quota like any attachment but its ingestion fails at once (no minutes of embedding)."""
    header = ",".join(f"q{seed}_{n}" for n in range(600)) + "\n"
    line = ",".join("1" for _ in range(600)) + "\n"
    body = header + line * ((size - len(header)) // len(line) + 1)
    return body.encode()[:size]


async def _attachment_count(server: RunningServer) -> int:
    async with server.state.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Document).where(Document.session_id.isnot(None))
            )
            or 0
        )


def _stored_files(server: RunningServer) -> list[Path]:
    files = server.settings.files_dir
    return [p for p in files.rglob("*") if p.is_file() and "spool" not in p.parts]


async def test_attachment_quota_refuses_and_stores_nothing(small_quota_server: RunningServer) -> None:
    server = small_quota_server
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    await attach_ok(world.client, session_id, "first.csv", _filler(1, 600_000))
    files_before = _stored_files(server)
    result = await attach(world.client, session_id, "second.csv", _filler(2, 600_000))
    assert result["__typename"] == "StorageQuotaExceeded", result
    assert result["limitBytes"] == 1024 * 1024
    assert result["usedBytes"] == 600_000
    assert "1 MB" in result["message"], result
    assert await _attachment_count(server) == 1
    await asyncio.sleep(0.2)  # the view discards the refused upload after answering
    assert _stored_files(server) == files_before
    # A small one still fits; model documents do not count against it.
    await attach_ok(world.client, session_id, "small.csv", _filler(3, 100_000))


async def test_concurrent_attachments_cannot_both_slip_under_the_quota(
    small_quota_server: RunningServer,
) -> None:
    server = small_quota_server
    model = await create_model(server.state.sessionmaker)
    for round_number in range(4):
        world = await chat_world(server, model=model)
        session_id = await start_session(world.client, model.id)
        results = await asyncio.gather(
            *(
                attach(world.client, session_id, f"race-{n}.csv", _filler(round_number * 10 + n, 600_000))
                for n in range(3)
            )
        )
        kinds = sorted(result["__typename"] for result in results)
        assert kinds == ["DocumentUploaded", "StorageQuotaExceeded", "StorageQuotaExceeded"], (
            round_number,
            results,
        )
        async with server.state.sessionmaker() as session:
            used = await session.scalar(
                text(
                    "SELECT coalesce(sum(d.size_bytes), 0) FROM documents d JOIN chat_sessions s "
                    "ON s.id = d.session_id WHERE s.user_id = :user"
                ),
                {"user": world.user.id},
            )
        assert used == 600_000


def _wide_csv(columns: int) -> bytes:
    header = ",".join(f"c{n}" for n in range(columns))
    row = ",".join(str(n % 10) for n in range(columns))
    return (header + "\n" + row + "\n" + row + "\n").encode()


async def test_csv_with_50000_columns_fails_quickly_with_its_message(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    content = _wide_csv(50_000)
    assert 500_000 < len(content) < 1_000_000
    started = time.monotonic()
    document_id = await upload_document(superadmin, model.id, "wide.csv", content)
    document = await wait_for_final(superadmin, document_id, timeout=60)
    elapsed = time.monotonic() - started
    assert document["status"] == "FAILED", document
    assert document["error"] == "This CSV has 50,000 columns; ragql reads at most 512 (CSV_MAX_COLUMNS).", (
        document
    )
    assert elapsed < 10, elapsed


async def test_csv_with_a_1_mb_cell_fails_with_its_message(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    content = b"name,notes\nalpha,short\nbeta," + b"x" * (1024 * 1024) + b"\ngamma,short\n"
    document_id = await upload_document(superadmin, model.id, "big-cell.csv", content)
    document = await wait_for_final(superadmin, document_id, timeout=60)
    assert document["status"] == "FAILED", document
    assert document["error"] == (
        "Row 2 of this CSV has a cell of 1,048,576 characters; ragql reads at most 65,536 characters "
        "per cell (CSV_MAX_CELL_CHARS)."
    ), document


async def test_csv_within_the_limits_is_ingested(server: RunningServer, superadmin: GraphQLClient) -> None:
    model = await create_model(server.state.sessionmaker)
    header = ",".join(f"c{n}" for n in range(512))
    content = (header + "\n" + ",".join("v" for _ in range(512)) + "\n").encode()
    document_id = await upload_document(superadmin, model.id, "wide-but-fine.csv", content)
    document = await wait_for_final(superadmin, document_id, timeout=120)
    assert document["status"] == "READY", document
