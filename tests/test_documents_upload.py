"""Uploads end to end on small inline files: streaming, typed results, progress, delete, re-index."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gql_server.db.models import Document, PendingFileDeletion, Role
from tests.conftest import RunningServer
from tests.document_helpers import (
    DELETE,
    DOCUMENT,
    DOCUMENTS,
    EVENTS,
    REINDEX,
    chunk_rows,
    follow_progress,
    upload,
    upload_document,
    wait_for_final,
)
from tests.factories import client_for, create_model, create_user, grant_model
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

PROSE = (
    "The quick brown fox jumps over the lazy dog. Foxes are small omnivorous mammals.\n\n"
    "Photosynthesis converts light energy into chemical energy stored in glucose. "
    "Chlorophyll absorbs mostly blue and red light.\n\n"
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War in the Holy Roman Empire.\n"
) * 3


async def test_upload_text_ingests_with_progress_and_chunks(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    result = await upload(superadmin, model.id, "notes.md", PROSE.encode())
    assert result["__typename"] == "DocumentUploaded", result
    document = result["document"]
    assert document["kind"] == "TEXT"
    assert document["sha256"] == hashlib.sha256(PROSE.encode()).hexdigest()
    assert document["sizeBytes"] == len(PROSE.encode())
    assert document["title"] == "notes"
    events = await follow_progress(superadmin, document["id"])
    statuses = [event["status"] for event in events]
    assert statuses[-1] == "READY", events
    order = ["QUEUED", "PARSING", "CHUNKING", "EMBEDDING", "STORING", "READY"]
    ranks = [order.index(status) for status in statuses]
    assert ranks == sorted(ranks), statuses
    progresses = [event["progress"] for event in events]
    assert progresses == sorted(progresses) and progresses[-1] == 1.0
    final = (await superadmin.execute(DOCUMENT, {"id": document["id"]}))["document"]
    assert final["status"] == "READY" and final["chunkCount"] > 0 and final["error"] is None
    chunks = await chunk_rows(server.state.sessionmaker, document["id"])
    assert len(chunks) == final["chunkCount"]
    assert [chunk["chunk_index"] for chunk in chunks] == list(range(len(chunks)))
    assert all(chunk["token_count"] <= 256 and str(chunk["model_id"]) == str(model.id) for chunk in chunks)
    assert "Westphalia" in " ".join(chunk["text"] for chunk in chunks)
    # A late subscriber gets the final state at once and the stream ends.
    late = await follow_progress(superadmin, document["id"])
    assert [event["status"] for event in late] == ["READY"]


async def test_duplicate_upload_names_the_existing_document(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    first = await upload_document(superadmin, model.id, "a.txt", PROSE.encode())
    again = await upload(superadmin, model.id, "renamed.txt", PROSE.encode())
    assert again["__typename"] == "DuplicateDocument", again
    assert again["existing"]["id"] == first and again["existing"]["filename"] == "a.txt"
    # Another model may hold the same bytes.
    other = await create_model(server.state.sessionmaker)
    assert (await upload(superadmin, other.id, "a.txt", PROSE.encode()))["__typename"] == "DocumentUploaded"
    await wait_for_final(superadmin, first)
    incoming = server.settings.files_dir / "incoming"
    assert not list(incoming.glob("*")), "refused uploads leave no temporary file"


async def test_upload_permissions(server: RunningServer) -> None:
    sessionmaker = server.state.sessionmaker
    model = await create_model(sessionmaker)
    hidden = await create_model(sessionmaker)
    reader = await create_user(sessionmaker)
    await grant_model(sessionmaker, model, user=reader)
    client = client_for(server.client, server.state.tokens, reader)
    assert (await upload(client, model.id, "a.txt", b"hello there"))["__typename"] == "Forbidden"
    assert (await upload(client, hidden.id, "a.txt", b"hello there"))["__typename"] == "NotFound"
    # Anonymous: refused before the body is stored.
    response = await server.client.http.post(
        server.base_url + "/graphql",
        data={"operations": "{}", "map": "{}"},
        files={"0": ("a.txt", b"x" * 1000, "text/plain")},
    )
    assert response.status_code == 401


async def test_list_get_delete_and_reindex(server: RunningServer, superadmin: GraphQLClient) -> None:
    sessionmaker = server.state.sessionmaker
    model = await create_model(sessionmaker)
    document_id = await upload_document(superadmin, model.id, "facts.txt", PROSE.encode())
    ready = await wait_for_final(superadmin, document_id)
    assert ready["status"] == "READY"
    listing = (await superadmin.execute(DOCUMENTS, {"modelId": str(model.id)}))["documents"]
    assert listing["totalCount"] == 1 and listing["items"][0]["id"] == document_id
    only_failed = (await superadmin.execute(DOCUMENTS, {"modelId": str(model.id), "status": "FAILED"}))[
        "documents"
    ]
    assert only_failed["totalCount"] == 0
    # The one list rule (kit/pagination.py): `first` outside 1..100 is a BAD_USER_INPUT error.
    for first in (0, 101):
        bad_page = await superadmin.raw(DOCUMENTS, {"modelId": str(model.id), "first": first})
        assert [error["extensions"]["code"] for error in bad_page["errors"]] == ["BAD_USER_INPUT"]
        assert bad_page["errors"][0]["message"] == "`first` must be between 1 and 100."

    # Readers see documents; others get NotFound / null, exactly as for a missing model.
    reader = await create_user(sessionmaker)
    outsider = await create_user(sessionmaker)
    await grant_model(sessionmaker, model, user=reader)
    reader_client = client_for(server.client, server.state.tokens, reader)
    outsider_client = client_for(server.client, server.state.tokens, outsider)
    assert (await reader_client.execute(DOCUMENT, {"id": document_id}))["document"]["id"] == document_id
    assert (await outsider_client.execute(DOCUMENT, {"id": document_id}))["document"] is None
    listing = (await outsider_client.execute(DOCUMENTS, {"modelId": str(model.id)}))["documents"]
    assert listing["__typename"] == "NotFound"
    assert (await reader_client.execute(DELETE, {"id": document_id}))["deleteDocument"][
        "__typename"
    ] == "Forbidden"
    assert (await outsider_client.execute(DELETE, {"id": document_id}))["deleteDocument"][
        "__typename"
    ] == "NotFound"
    assert (await reader_client.execute(REINDEX, {"id": document_id}))["reindexDocument"][
        "__typename"
    ] == "Forbidden"

    chunks_before = await chunk_rows(sessionmaker, document_id)
    reindexed = (await superadmin.execute(REINDEX, {"id": document_id}))["reindexDocument"]
    assert reindexed["__typename"] == "DocumentReindexQueued", reindexed
    again = await wait_for_final(superadmin, document_id)
    assert again["status"] == "READY" and again["attempts"] == 2
    chunks_after = await chunk_rows(sessionmaker, document_id)
    assert [c["text"] for c in chunks_after] == [c["text"] for c in chunks_before], (
        "re-index swaps, never duplicates"
    )

    async with sessionmaker() as session:
        stored = (
            await session.execute(select(Document.storage_path).where(Document.id == document_id))
        ).scalar_one()
    path = server.settings.files_dir / stored
    assert path.exists()
    deleted = (await superadmin.execute(DELETE, {"id": document_id}))["deleteDocument"]
    assert deleted == {"__typename": "DocumentDeleted", "id": document_id}
    assert not path.exists()
    assert await chunk_rows(sessionmaker, document_id) == []
    async with sessionmaker() as session:
        assert (await session.execute(select(PendingFileDeletion))).first() is None
    assert (await superadmin.execute(DOCUMENT, {"id": document_id}))["document"] is None


async def test_download_original_with_range(server: RunningServer, superadmin: GraphQLClient) -> None:
    sessionmaker = server.state.sessionmaker
    model = await create_model(sessionmaker)
    content = PROSE.encode()
    document_id = await upload_document(superadmin, model.id, "facts.txt", content)
    document = await wait_for_final(superadmin, document_id)
    url = server.base_url + document["downloadUrl"]
    http = server.client.http
    whole = await http.get(url)
    assert whole.status_code == 200 and whole.content == content
    part = await http.get(url, headers={"Range": "bytes=4-9"})
    assert part.status_code == 206 and part.content == content[4:10]
    bearer = await http.get(
        server.base_url + f"/files/documents/{document_id}",
        headers={"Authorization": f"Bearer {superadmin.token}"},
    )
    assert bearer.status_code == 200
    assert (await http.get(server.base_url + f"/files/documents/{document_id}")).status_code == 401
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    assert (await http.get(tampered)).status_code == 401
    outsider = await create_user(sessionmaker)
    outsider_client = client_for(server.client, server.state.tokens, outsider)
    response = await http.get(
        server.base_url + f"/files/documents/{document_id}",
        headers={"Authorization": f"Bearer {outsider_client.token}"},
    )
    assert response.status_code == 404


async def test_original_removed_after_ingestion_when_not_kept(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    server.settings.keep_original_files = False
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "facts.txt", PROSE.encode())
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["fileKept"] is False and document["downloadUrl"] is None
    assert not list((server.settings.files_dir / "documents").glob("*"))
    refused = (await superadmin.execute(REINDEX, {"id": document_id}))["reindexDocument"]
    assert refused["__typename"] == "InvalidInput" and "not kept" in refused["message"]


async def test_subscriptions_deny_readers_of_other_models(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    sessionmaker = server.state.sessionmaker
    model = await create_model(sessionmaker)
    document_id = await upload_document(superadmin, model.id, "facts.txt", PROSE.encode())
    outsider = await create_user(sessionmaker)
    outsider_client = client_for(server.client, server.state.tokens, outsider)
    async with outsider_client.subscription_connection() as connection:
        for query, variables in (
            (
                "subscription($id: UUID!) { documentProgress(documentId: $id) { status } }",
                {"id": document_id},
            ),
            (
                "subscription($id: UUID!) { documentProgress(documentId: $id) { status } }",
                {"id": str(model.id)},
            ),
            (EVENTS, {"modelId": str(model.id)}),
        ):
            operation = await connection.subscribe(query, variables)
            message = await connection.next_message()
            while message.get("id") != operation or message["type"] == "complete":
                message = await connection.next_message()
            assert message["type"] in ("next", "error"), message
            payload = message["payload"]
            errors = payload if isinstance(payload, list) else payload.get("errors")
            assert errors and errors[0]["extensions"]["code"] == "NOT_FOUND", message
            assert "not found" in errors[0]["message"].lower()
    await wait_for_final(superadmin, document_id)


async def test_document_events_stream_of_a_model(server: RunningServer, superadmin: GraphQLClient) -> None:
    sessionmaker = server.state.sessionmaker
    model = await create_model(sessionmaker)
    reader = await create_user(sessionmaker, role=Role.USER)
    await grant_model(sessionmaker, model, user=reader)
    reader_client = client_for(server.client, server.state.tokens, reader)
    async with reader_client.subscription_connection() as connection:
        operation = await connection.subscribe(EVENTS, {"modelId": str(model.id)})
        await asyncio.sleep(0.3)
        document_id = await upload_document(superadmin, model.id, "facts.txt", PROSE.encode())
        seen: list[str] = []
        deadline = time.monotonic() + 120
        async for payload in connection.results(operation, timeout=120):
            event = payload["data"]["documentEvents"]
            assert event["documentId"] == document_id
            seen.append(event["status"])
            if event["status"] == "READY" or time.monotonic() > deadline:
                break
        assert seen[0] == "QUEUED" and seen[-1] == "READY", seen
        assert (await superadmin.execute(DELETE, {"id": document_id}))["deleteDocument"][
            "__typename"
        ] == "DocumentDeleted"
        async for payload in connection.results(operation, timeout=30):
            event = payload["data"]["documentEvents"]
            if event["deleted"]:
                break


async def test_crash_recovery_re_enqueues_unfinished_documents(
    server: RunningServer, superadmin: GraphQLClient, tmp_path: Path
) -> None:
    """A document left PARSING by a killed process is picked up at the next start."""
    from tests.conftest import start_server

    sessionmaker = server.state.sessionmaker
    model = await create_model(sessionmaker)
    document_id = await upload_document(superadmin, model.id, "facts.txt", PROSE.encode())
    await wait_for_final(superadmin, document_id)
    # Simulate the state a SIGKILL mid-ingestion leaves behind: a working status, old chunks.
    async with sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE documents SET status = 'EMBEDDING', progress = 0.4 WHERE id = :id"),
            {"id": document_id},
        )
    chunks_before = len(await chunk_rows(sessionmaker, document_id))
    second, task, _, base_url = await start_server(server.settings)
    try:
        client = GraphQLClient(base_url, server.client.http, superadmin.token)
        document = await wait_for_final(client, document_id)
        assert document["status"] == "READY"
        assert len(await chunk_rows(sessionmaker, document_id)) == chunks_before
    finally:
        second.should_exit = True
        await asyncio.wait_for(task, 30)


async def test_ingest_command_line(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`ragql ingest MODEL PATH...` as an admin: stores, ingests, reports per file."""
    import subprocess
    import sys

    from gql_server.database_setup import open_database

    async def make_model() -> str:
        database = await open_database(settings, migrate=False)
        try:
            from gql_server.auth.service import ensure_superadmin

            async with database.sessionmaker.begin() as session:
                await ensure_superadmin(session, settings.superadmin_email, "superadmin-password-1")
            model = await create_model(database.sessionmaker, name="cli-model")
            return str(model.id)
        finally:
            await database.close()

    await make_model()
    good = tmp_path / "notes.md"
    good.write_text(PROSE)
    image = tmp_path / "photo.pdf"
    image.write_bytes(bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 100)
    environment = {
        **__import__("os").environ,
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    }
    ragql = str(Path(sys.executable).with_name("ragql"))
    command = [ragql, "ingest", "--data-dir", str(settings.data_dir), "--email", settings.superadmin_email]
    result = await asyncio.to_thread(
        subprocess.run,
        [*command, "cli-model", str(good), str(image)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 1, result.stderr
    assert "notes.md" in result.stderr and "READY" in result.stderr, result.stderr
    assert "photo.pdf: The file is a PNG image" in result.stderr
    again = await asyncio.to_thread(
        subprocess.run,
        [*command, "cli-model", str(good)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert again.returncode == 0 and "already in cli-model" in again.stderr, again.stderr
