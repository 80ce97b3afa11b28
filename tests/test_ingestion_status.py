"""Ingestion status that tells the truth (issue 16): queue place, ETA, running chunk totals.

A document waiting behind another showed "queued 0%" for minutes with no reason, an ETA
said "about 2 min" with 4 to go, and the chunk count grew during embedding like a final
total. These tests queue documents behind a slow one on a server with one slot per lane
(the tests' settings) and follow them through `documents` and `documentProgress`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from gql_server.db.models import Document, DocumentChunk
from gql_server.settings import Settings, default_ingest_concurrency
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, start_server
from tests.document_helpers import upload_document
from tests.factories import create_model
from tests.graphql_client import GraphQLClient
from tests.test_ingestion_fairness import slow_text
from workers.eta import IngestionEstimate
from workers.pipeline.process import EMBEDDING_SHARE, process_document
from workers.pipeline.sniff import DocumentKind as PipelineKind

WORKING = ("QUEUED", "PARSING", "CHUNKING", "EMBEDDING", "STORING")

PLACES = """
query Places($modelId: UUID!) {
  documents(modelId: $modelId, first: 20) {
    ... on DocumentPage { items { id status documentsAhead chunkCount chunkCountFinal } }
  }
}
"""

PROGRESS = """
subscription Progress($id: UUID!) {
  documentProgress(documentId: $id) {
    documentId status progress chunkCount chunkCountFinal documentsAhead elapsedSeconds etaSeconds
  }
}
"""


@pytest_asyncio.fixture
async def one_slot_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """One document at a time per lane, whatever the cores (the default follows them)."""
    one_slot = settings.model_copy(update={"ingest_concurrency": 1})
    uvicorn_server, task, app, base_url = await start_server(one_slot)
    async with httpx.AsyncClient(timeout=60) as http:
        yield RunningServer(base_url, app, one_slot, GraphQLClient(base_url, http))
    uvicorn_server.should_exit = True
    await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture
async def admin(one_slot_server: RunningServer) -> GraphQLClient:
    return await log_in(one_slot_server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)


async def _places(client: GraphQLClient, model_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    data = await client.execute(PLACES, {"modelId": str(model_id)})
    return {item["id"]: item for item in data["documents"]["items"]}


async def _follow(
    client: GraphQLClient, document_id: str, timeout: float = 400
) -> list[tuple[float, dict[str, Any]]]:
    """Every documentProgress event with the time it arrived."""
    loop = asyncio.get_running_loop()
    events: list[tuple[float, dict[str, Any]]] = []
    async with client.subscription_connection() as connection:
        operation = await connection.subscribe(PROGRESS, {"id": document_id})
        async for payload in connection.results(operation, timeout=timeout):
            assert not payload.get("errors"), payload
            events.append((loop.time(), payload["data"]["documentProgress"]))
    return events


async def _stored_chunks(server: RunningServer, document_id: str) -> int:
    async with server.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(DocumentChunk)
            .where(DocumentChunk.document_id == uuid.UUID(document_id))
        )
    return int(count or 0)


@pytest.mark.asyncio
async def test_queued_documents_count_down_their_place_and_chunks_are_running_totals(
    one_slot_server: RunningServer, admin: GraphQLClient
) -> None:
    server, superadmin = one_slot_server, admin
    model = await create_model(server.state.sessionmaker)
    other_model = await create_model(server.state.sessionmaker)
    slow = await upload_document(superadmin, model.id, "slow.txt", slow_text(1, 220))
    # One lane for every model's documents: the other model's document counts too (as a number).
    middle = await upload_document(superadmin, other_model.id, "middle.txt", slow_text(2, 200))
    third = await upload_document(superadmin, model.id, "third.txt", slow_text(3, 160))
    last = await upload_document(superadmin, model.id, "last.txt", slow_text(4, 60))
    places = await _places(superadmin, model.id)
    assert places[last]["status"] == "QUEUED" and places[last]["documentsAhead"] == 3, places
    assert places[third]["documentsAhead"] == 2, places
    # The slow one is running (null: not queued) or about to (nothing ahead of it).
    assert places[slow]["documentsAhead"] in (None, 0), places
    for document_id in (third, last):
        assert places[document_id]["chunkCountFinal"] is False, places

    last_events, third_events = await asyncio.gather(_follow(superadmin, last), _follow(superadmin, third))

    for document_id, events, first_place in ((last, last_events, 3), (third, third_events, 2)):
        statuses = [event["status"] for _, event in events]
        assert statuses[-1] == "READY", events
        queued = [event["documentsAhead"] for _, event in events if event["status"] == "QUEUED"]
        # Counted down while it waited: strictly fewer each time it is told, never a stale repeat.
        assert queued[0] <= first_place and len(queued) >= 2, queued
        assert queued == sorted(set(queued), reverse=True), queued
        assert all(event["documentsAhead"] is None for _, event in events if event["status"] != "QUEUED"), (
            events
        )
        # Running totals until READY, then the final count, which is what is stored.
        working = [event for _, event in events if event["status"] in WORKING]
        assert working and all(event["chunkCountFinal"] is False for event in working), working
        counts = [event["chunkCount"] for event in working]
        assert counts == sorted(counts), counts
        final = events[-1][1]
        assert final["chunkCountFinal"] is True
        assert final["chunkCount"] == await _stored_chunks(server, document_id) > 0
        assert max(counts) <= final["chunkCount"]
    # The place told at upload was the truth: the documents started in that order.
    async with server.state.sessionmaker() as session:
        started = dict(
            (
                await session.execute(
                    select(Document.id, Document.processing_started_at).where(
                        Document.id.in_([uuid.UUID(i) for i in (slow, middle, third, last)])
                    )
                )
            ).all()
        )
    order = sorted(started, key=lambda i: started[i])
    assert [str(i) for i in order] == [slow, middle, third, last]
    listed = await _places(superadmin, model.id)
    assert all(item["chunkCountFinal"] and item["documentsAhead"] is None for item in listed.values()), listed


@pytest.mark.asyncio
async def test_eta_is_told_from_this_servers_speed_and_is_sane(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    # The first text document: no history yet; its ETA comes from its own pace once 2 % is done.
    first = await upload_document(superadmin, model.id, "first.txt", slow_text(21, 160))
    first_events = await _follow(superadmin, first)
    # The second one of the same kind: the first's speed (seconds per byte) is known.
    second = await upload_document(superadmin, model.id, "second.txt", slow_text(22, 160))
    second_events = await _follow(superadmin, second)
    for events in (first_events, second_events):
        assert events[-1][1]["status"] == "READY"
        etas = [event["etaSeconds"] for _, event in events if event["etaSeconds"] is not None]
        assert etas and all(eta >= 0 for eta in etas), events
        assert events[-1][1]["etaSeconds"] == 0.0
        assert all(event["etaSeconds"] is None for _, event in events if event["status"] == "QUEUED")
    running = [
        (at, event) for at, event in second_events if event["status"] in WORKING[1:] and event["progress"] > 0
    ]
    # With history the ETA is there at every step of the run ...
    assert running and all(event["etaSeconds"] is not None for _, event in running), running
    # ... and sane: within a factor of 3 of what was left, at the start and halfway (the
    # ±30 % figure is bench/ingest_bench.py's, on a quiet machine; this one is shared).
    ready_at = second_events[-1][0]
    for at, event in (running[0], next(item for item in running if item[1]["progress"] >= 0.45)):
        actual = ready_at - at
        if actual < 1.0:
            continue  # too short to judge on a loaded machine
        assert actual / 3 <= event["etaSeconds"] <= actual * 3, (event, actual)


def test_the_estimate_blends_history_and_own_pace() -> None:
    # 0.01 s per byte, 1,000 bytes: 10 s by the history.
    estimate = IngestionEstimate(0.01, 1000, per_page=False)
    assert estimate.remaining(0.0, 0.0, None) == pytest.approx(10.0)
    # Halfway after 8 s: own pace says 16 s in all, history 10 s; blended 13 s, 5 s left.
    assert estimate.remaining(8.0, 0.5, None) == pytest.approx(5.0)
    # Near the end its own pace decides.
    assert estimate.remaining(19.8, 0.99, None) == pytest.approx(0.99 * 20 + 0.01 * 10 - 19.8)
    # No history: nothing until 2 % is done, then its own pace.
    fresh = IngestionEstimate(None, 1000, per_page=False)
    assert fresh.remaining(1.0, 0.01, None) is None
    assert fresh.remaining(2.0, 0.25, None) == pytest.approx(6.0)
    # Paged kinds count pages (known once the file is open).
    # A start-up cost before the first unit of work is paid once, not extrapolated: 2 s of
    # start-up, then 1 s for 10 % of the work → 2 + 1 / 0.1 = 12 s in all, 9 s left.
    assert fresh.remaining(3.0, 0.1, None, start_up=2.0) == pytest.approx(9.0)
    assert fresh.remaining(3.0, 0.1, None) == pytest.approx(27.0)  # without it: 30 s in all
    paged = IngestionEstimate(0.5, 10**9, per_page=True)
    assert paged.remaining(0.0, 0.0, 40) == pytest.approx(20.0)
    assert paged.remaining(0.0, 0.0, None) is None
    # Slower than the history: its own pace pulls the total up (own 100 s, blended 55 s).
    assert estimate.remaining(50.0, 0.5, None) == pytest.approx(5.0)


def test_work_keeps_moving_while_chunks_are_embedded(tmp_path: Path) -> None:
    """The share of work grows during the chunk embedding too (62 % of a PDF's time), where
    the bar used to stand still and the ETA said 0 s."""
    from gql_server.embedding.embedder import get_embedder

    path = tmp_path / "long.txt"
    path.write_bytes(b"\n\n".join(slow_text(seed, 40) for seed in range(12)))
    fractions: list[float] = []
    processing = process_document(path, PipelineKind.TEXT, get_embedder(), on_work=fractions.append)
    for _ in processing.batches():
        pass
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # Reading and the sentence pass done, the chunks' embedding still moves it: reports fall
    # strictly inside the embedding's share (it used to jump from there to the end).
    embedding_starts = 1 - EMBEDDING_SHARE
    inside = [value for value in fractions if embedding_starts + 0.01 < value < 0.99]
    assert inside, fractions


def test_ingest_concurrency_follows_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, threads, expected in ((2, 2, 1), (1, 2, 1), (8, 2, 4), (64, 1, 16), (3, 2, 1)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert default_ingest_concurrency(threads) == expected
        settings = Settings(_env_file=None, embedding_threads=threads)  # type: ignore[call-arg]
        assert settings.ingest_concurrency == expected
    assert Settings(_env_file=None, ingest_concurrency=3).ingest_concurrency == 3  # type: ignore[call-arg]


PLACE = "query Place($id: UUID!) { document(id: $id) { id status documentsAhead } }"


@pytest.mark.asyncio
async def test_an_attachments_place_follows_the_round_robin(one_slot_server: RunningServer) -> None:
    """Attachments take turns over users: the place told is the place it gets."""
    from tests.chat_support import chat_world, start_session
    from tests.test_ingestion_fairness import attach_ok

    server = one_slot_server
    model = await create_model(server.state.sessionmaker)
    first = await chat_world(server, model=model)
    second = await chat_world(server, model=model)
    first_session = await start_session(first.client, model.id)
    second_session = await start_session(second.client, model.id)
    running = await attach_ok(first.client, first_session, "a0.txt", slow_text(40, 220))
    for _ in range(600):  # until it runs: its owner is then served last
        if (await first.client.execute(PLACE, {"id": running}))["document"]["status"] != "QUEUED":
            break
        await asyncio.sleep(0.05)
    later = [await attach_ok(first.client, first_session, f"a{i}.txt", slow_text(40 + i, 60)) for i in (1, 2)]
    other = await attach_ok(second.client, second_session, "b.txt", slow_text(50, 60))
    told = {
        document_id: (await client.execute(PLACE, {"id": document_id}))["document"]["documentsAhead"]
        for client, document_id in (
            (first.client, later[0]),
            (first.client, later[1]),
            (second.client, other),
        )
    }
    # The first user's attachment is running: the second user's goes next, then the first's two.
    assert told == {other: 1, later[0]: 2, later[1]: 3}, told
    async with server.state.sessionmaker() as session:
        for _ in range(2400):
            rows = (
                await session.execute(
                    select(Document.id, Document.processing_started_at, Document.status).where(
                        Document.id.in_([uuid.UUID(i) for i in (running, *later, other)])
                    )
                )
            ).all()
            if all(row.status.value in ("READY", "FAILED") for row in rows):
                break
            await asyncio.sleep(0.25)
            session.expire_all()
    assert all(row.status.value == "READY" for row in rows), rows
    started = sorted(rows, key=lambda row: row.processing_started_at)
    assert [str(row.id) for row in started] == [running, other, *later]
