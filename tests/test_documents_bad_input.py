"""Bad uploads end in a clear typed result or a FAILED document with a reason; nothing crashes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import psutil
import pytest
import pytest_asyncio

from gql_server.settings import Settings
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, start_server
from tests.document_helpers import UPLOAD, chunk_rows, upload, upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient
from tests.pdf_factory import PNG_BYTES, decompression_bomb_pdf, encrypt, image_only_pdf, text_pdf

pytestmark = pytest.mark.asyncio

GOOD_TEXT = b"Mitochondria are the powerhouse of the cell. They produce ATP through respiration.\n" * 5


@pytest_asyncio.fixture
async def small_limit_server(settings: Settings) -> AsyncIterator[RunningServer]:
    limited = settings.model_copy(update={"max_upload_mb": 1})
    uvicorn_server, task, app, base_url = await start_server(limited)
    async with httpx.AsyncClient(timeout=60) as http:
        yield RunningServer(base_url, app, limited, GraphQLClient(base_url, http))
    uvicorn_server.should_exit = True
    await asyncio.wait_for(task, 30)


async def test_oversized_uploads_are_refused_with_bounded_disk(small_limit_server: RunningServer) -> None:
    server = small_limit_server
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    model = await create_model(server.state.sessionmaker)
    # Just over the limit: read (and discarded) up to the body limit, typed result.
    result = await upload(admin, model.id, "big.txt", b"a" * (1024 * 1024 + 10))
    assert result["__typename"] == "FileTooLarge", result
    assert result["maxBytes"] == 1024 * 1024 and "1 MB" in result["message"]
    # Far over: refused from Content-Length before the body is read.
    response = await server.client.http.post(
        server.base_url + "/graphql",
        data={"operations": '{"query": "mutation { __typename }"}', "map": "{}"},
        files={"0": ("huge.txt", b"a" * (4 * 1024 * 1024), "text/plain")},
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert response.status_code == 413
    assert "limit of 1 MB" in response.json()["errors"][0]["message"]
    # Nothing stays on disk and a right-sized upload still works.
    assert not list((server.settings.files_dir / "incoming").glob("*"))
    assert (await upload(admin, model.id, "ok.txt", GOOD_TEXT))["__typename"] == "DocumentUploaded"


async def test_empty_and_mislabelled_files_are_refused(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    empty = await upload(superadmin, model.id, "empty.pdf", b"")
    assert empty["__typename"] == "UnsupportedFileType" and "empty" in empty["message"].lower()
    png = await upload(superadmin, model.id, "scan.pdf", PNG_BYTES)
    assert png["__typename"] == "UnsupportedFileType" and "PNG" in png["message"], png
    binary = await upload(superadmin, model.id, "data.csv", os.urandom(4096))
    assert binary["__typename"] == "UnsupportedFileType"
    # A missing or wrongly mapped file is a clear GraphQL error, not a crash.
    body = await superadmin.upload(UPLOAD, {"modelId": str(model.id)}, "notfile", "a.txt", b"hello")
    assert body.get("errors"), body
    assert not list((server.settings.files_dir / "incoming").glob("*"))


async def test_broken_pdfs_fail_with_a_reason(server: RunningServer, superadmin: GraphQLClient) -> None:
    model = await create_model(server.state.sessionmaker)
    good = text_pdf(
        [["A perfectly ordinary first page about volcanoes."], ["Second page on basalt and lava."]]
    )
    encrypted_id = await upload_document(superadmin, model.id, "secret.pdf", encrypt(good, "pw"))
    corrupt_id = await upload_document(superadmin, model.id, "corrupt.pdf", b"%PDF-1.7\n" + os.urandom(20000))
    truncated_id = await upload_document(superadmin, model.id, "truncated.pdf", good[: len(good) // 3])
    fine_id = await upload_document(superadmin, model.id, "fine.txt", GOOD_TEXT)

    encrypted = await wait_for_final(superadmin, encrypted_id)
    assert encrypted["status"] == "FAILED" and "encrypted" in encrypted["error"].lower(), encrypted
    corrupt = await wait_for_final(superadmin, corrupt_id)
    assert corrupt["status"] == "FAILED" and corrupt["error"], corrupt
    truncated = await wait_for_final(superadmin, truncated_id)
    # pypdf may recover part of a truncated file; either way the outcome is explained.
    if truncated["status"] == "FAILED":
        assert truncated["error"], truncated
    else:
        assert truncated["warnings"] or truncated["chunkCount"] >= 0
    # The other documents keep going.
    assert (await wait_for_final(superadmin, fine_id))["status"] == "READY"


async def test_image_only_pdf_is_ready_with_the_no_text_warning(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "scanned.pdf", image_only_pdf(300))
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY", document
    assert document["chunkCount"] == 0 and document["pageCount"] == 300
    assert any("No text" in warning for warning in document["warnings"]), document["warnings"]


async def test_decompression_bomb_page_is_skipped_with_bounded_memory(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    bomb, _ = decompression_bomb_pdf(1 << 30)
    process = psutil.Process()
    before = process.memory_info().rss
    bomb_id = await upload_document(superadmin, model.id, "bomb.pdf", bomb)
    other_id = await upload_document(superadmin, model.id, "other.txt", GOOD_TEXT)
    document = await wait_for_final(superadmin, bomb_id, timeout=240)
    grown = process.memory_info().rss - before
    assert grown < 400 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MB"
    if document["status"] == "READY":
        texts = " ".join(chunk["text"] for chunk in await chunk_rows(server.state.sessionmaker, bomb_id))
        assert "first page is perfectly normal" in texts and "third page is normal" in texts
    else:
        assert document["error"], document
    assert (await wait_for_final(superadmin, other_id))["status"] == "READY"


async def test_csv_with_ragged_rows_and_latin1_encoding(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    rows = ["city;country;population"]
    rows += [f"Zürich {i};Schweiz;{400000 + i}" for i in range(40)]
    rows.insert(5, "Genève;Suisse")  # a short row
    rows.insert(9, "São Paulo;Brasil;12000000;extra;cells")  # a long row
    content = ("\r\n".join(rows) + "\r\n").encode("latin-1", "replace")
    document_id = await upload_document(superadmin, model.id, "cities.csv", content)
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY", document
    assert document["kind"] == "CSV" and document["chunkCount"] >= 1
    chunks = await chunk_rows(server.state.sessionmaker, document_id)
    joined = " ".join(chunk["text"] for chunk in chunks)
    assert "Zürich" in joined and "Genève" in joined
    assert chunks[0]["row_start"] == 1 and document["rowCount"] == len(rows) - 1
    assert document["warnings"], "ragged rows are reported"
    utf16 = ("name,remark\n" + "".join(f"Ünïcödé {i},naïve café\n" for i in range(10))).encode("utf-16")
    utf16_id = await upload_document(superadmin, model.id, "utf16.csv", utf16)
    utf16_document = await wait_for_final(superadmin, utf16_id)
    assert utf16_document["status"] == "READY", utf16_document
    utf16_text = " ".join(chunk["text"] for chunk in await chunk_rows(server.state.sessionmaker, utf16_id))
    assert "naïve café" in utf16_text
