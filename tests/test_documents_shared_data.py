"""The shared PDFs and CSVs (../shared/data/docs), uploaded and ingested end to end."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import text

from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, shared_data_path
from tests.document_helpers import chunk_rows, follow_progress, upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_data]

ORDER = ["QUEUED", "PARSING", "CHUNKING", "EMBEDDING", "STORING", "READY"]
SMALL_PDFS = (
    "pdfplumber__ca-warn-report.pdf",
    "pdfplumber__nics-background-checks-2015-11.pdf",
    "sample-files__multicolumn.pdf",
    "unstructured__layout-parser-paper-fast.pdf",
)
CSVS = (
    "fivethirtyeight__congress-demographics_data_aging_congress.csv",
    "fivethirtyeight__pollster-ratings_2023_raw-polls.csv",
)


def _page_count(path: Path) -> int:
    return len(PdfReader(path).pages)


async def _nearest_chunks(
    server: RunningServer, model_id: object, question: str, limit: int = 3
) -> list[dict]:
    from gql_server.embedding.embedder import get_embedder

    embedder = await asyncio.to_thread(get_embedder)
    vector = (await asyncio.to_thread(embedder.embed, [question]))[0]
    literal = "[" + ",".join(repr(float(x)) for x in vector) + "]"
    async with server.state.sessionmaker() as session:
        result = await session.execute(
            text(
                "SELECT text, page_start, page_end, embedding <=> CAST(:q AS vector) AS distance "
                "FROM document_chunks WHERE model_id = :model ORDER BY distance LIMIT :limit"
            ),
            {"q": literal, "model": model_id, "limit": limit},
        )
        return [dict(row._mapping) for row in result]


async def test_federal_register_pdf_end_to_end(server: RunningServer, superadmin: GraphQLClient) -> None:
    path = shared_data_path("docs", "pdfplumber__federal-register-2020-17221.pdf")
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, path.name, path.read_bytes())
    events = await follow_progress(superadmin, document_id)
    statuses = [event["status"] for event in events]
    assert statuses[-1] == "READY", events
    assert [ORDER.index(s) for s in statuses] == sorted(ORDER.index(s) for s in statuses), statuses
    assert len(set(statuses)) >= 3, f"progress is reported along the way: {statuses}"
    assert all(e["progress"] <= f["progress"] for e, f in zip(events, events[1:], strict=False))
    working = [e for e in events if e["status"] not in ("QUEUED", "READY")]
    assert any(e["etaSeconds"] is not None and e["elapsedSeconds"] > 0 for e in working), working
    final = events[-1]
    pages = _page_count(path)
    assert final["pageCount"] == pages and final["percent"] == 100 and final["chunkCount"] > pages
    chunks = await chunk_rows(server.state.sessionmaker, document_id)
    assert len(chunks) == final["chunkCount"]
    assert all(1 <= c["page_start"] <= c["page_end"] <= pages for c in chunks)
    assert all(c["token_count"] <= 256 for c in chunks)
    # Retrieval of a known passage (page 4) with a plain pgvector cosine query.
    nearest = await _nearest_chunks(
        server,
        model.id,
        "The Runaway Stabilizer checklist recall item: the flightcrew uses the thumb-actuated trim switch "
        "to reduce forces on the control column",
    )
    hits = [c for c in nearest if "thumb-actuated trim switch" in " ".join(c["text"].split())]
    assert hits, [c["text"][:200] for c in nearest]
    assert hits[0]["page_start"] <= 4 <= hits[0]["page_end"]


async def test_small_shared_pdfs_and_csv_samples(
    server: RunningServer, superadmin: GraphQLClient, tmp_path: Path
) -> None:
    model = await create_model(server.state.sessionmaker)
    expected_pages: dict[str, int] = {}
    ids: dict[str, str] = {}
    for name in SMALL_PDFS:
        path = shared_data_path("docs", name)
        expected_pages[name] = _page_count(path)
        ids[name] = await upload_document(superadmin, model.id, name, path.read_bytes())
    # The first 150 rows of each CSV (the full files are ingested by the slow test and the bench).
    expected_rows: dict[str, int] = {}
    for name in CSVS:
        lines = shared_data_path("docs", name).read_bytes().splitlines(keepends=True)[:151]
        expected_rows[name] = len(lines) - 1
        ids[name] = await upload_document(superadmin, model.id, name, b"".join(lines))
    for name, document_id in ids.items():
        document = await wait_for_final(superadmin, document_id, timeout=240)
        assert document["status"] == "READY", document
        chunks = await chunk_rows(server.state.sessionmaker, document_id)
        assert len(chunks) == document["chunkCount"] > 0, name
        if name in expected_pages:
            assert document["kind"] == "PDF" and document["pageCount"] == expected_pages[name]
            assert all(1 <= c["page_start"] <= c["page_end"] <= expected_pages[name] for c in chunks)
        else:
            assert document["kind"] == "CSV" and document["rowCount"] == expected_rows[name]
            assert chunks[0]["row_start"] == 1 and chunks[-1]["row_end"] == expected_rows[name]
            header = shared_data_path("docs", name).open().readline().split(",")[0].strip('"')
            assert header in chunks[0]["text"], "rows are rendered with their column names"
    first_congress_chunk = (await chunk_rows(server.state.sessionmaker, ids[CSVS[0]]))[0]["text"]
    assert "bioname: AANDAHL, Fred George" in first_congress_chunk


@pytest.mark.slow
# A deadline, not a speed check (bench/ingest_bench.py measures speed): on the shared 2-core
# host the corpus took 23 min in one CI run and over 30 in another.
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    not os.environ.get("RAGQL_SLOW_TESTS"), reason="the whole corpus takes minutes; set RAGQL_SLOW_TESTS=1"
)
async def test_whole_shared_corpus(server: RunningServer, superadmin: GraphQLClient) -> None:
    folder = shared_data_path("docs")
    model = await create_model(server.state.sessionmaker)
    ids = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in (".pdf", ".csv"):
            ids[path.name] = await upload_document(superadmin, model.id, path.name, path.read_bytes())
    for name, document_id in ids.items():
        # The whole corpus takes longer than one access token lives (ACCESS_TOKEN_MINUTES=15):
        # poll each document with a freshly issued token, as a signed-in client would refresh.
        document = None
        for _ in range(6):  # 6 x 10 min, each with a token that outlives its wait
            admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
            with contextlib.suppress(AssertionError):
                document = await wait_for_final(admin, document_id, timeout=600)
                break
        assert document is not None, f"{name} did not finish in 60 minutes"
        assert document["status"] == "READY", (name, document)
        assert len(await chunk_rows(server.state.sessionmaker, document_id)) == document["chunkCount"]
