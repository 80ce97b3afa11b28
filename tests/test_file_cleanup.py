"""Nothing on disk outlives its row: deleting a model removes its documents' files.

Black-box through the API and the data dir. The test server's working directory is the
repository, not the data dir (as with `ragql serve`), so a stored path resolved against the
working directory instead of the files dir shows up here as files that stay behind.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gql_server.db.models import PendingFileDeletion
from tests.conftest import RunningServer, start_server
from tests.document_helpers import DOCUMENT, upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

DELETE_MODEL = """
mutation($id: UUID!) {
  deleteModel(id: $id) { __typename ... on ModelDeleted { deletedDocuments filesQueuedForDeletion } }
}
"""


def _prose(seed: int, sentences: int) -> bytes:
    words = ["river", "granite", "orbit", "lantern", "cedar", "quartz", "meadow", "signal", "harbor", "ember"]
    lines = []
    for index in range(sentences):
        a, b, c = (words[(seed + index * k) % len(words)] for k in (1, 3, 7))
        lines.append(f"Sentence {index} of set {seed}: the {a} met the {b} near a {c}.")
        if index % 8 == 7:
            lines.append("")
    return "\n".join(lines).encode()


def _files_of(directory: Path, document_ids: list[str]) -> list[str]:
    if not directory.exists():
        return []
    return sorted(
        entry.name for entry in directory.iterdir() if any(entry.name.startswith(d) for d in document_ids)
    )


async def _wait_until_no_files(server: RunningServer, document_ids: list[str], timeout: float = 30) -> None:
    files_dir = server.settings.files_dir
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _files_of(files_dir / "documents", document_ids) + _files_of(files_dir / "spool", document_ids)
        if not left:
            break
        await asyncio.sleep(0.1)
    assert _files_of(files_dir / "documents", document_ids) == [], "files of the deleted model stayed"
    assert _files_of(files_dir / "spool", document_ids) == [], "spool files of the deleted model stayed"
    async with server.state.sessionmaker() as session:
        for _ in range(100):
            if await session.scalar(select(func.count()).select_from(PendingFileDeletion)) == 0:
                break
            await asyncio.sleep(0.05)
        assert await session.scalar(select(func.count()).select_from(PendingFileDeletion)) == 0


async def test_deleting_an_idle_model_removes_its_files(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    assert Path.cwd().resolve() != server.settings.data_dir.resolve()
    model = await create_model(server.state.sessionmaker)
    kept = await create_model(server.state.sessionmaker)
    ids = [await upload_document(superadmin, model.id, f"notes-{n}.txt", _prose(n, 20)) for n in range(2)]
    other = await upload_document(superadmin, kept.id, "other.txt", _prose(9, 20))
    for document_id in [*ids, other]:
        assert (await wait_for_final(superadmin, document_id))["status"] == "READY"
    assert len(_files_of(server.settings.files_dir / "documents", ids)) == 2

    deleted = (await superadmin.execute(DELETE_MODEL, {"id": str(model.id)}))["deleteModel"]
    assert deleted == {"__typename": "ModelDeleted", "deletedDocuments": 2, "filesQueuedForDeletion": 2}
    await _wait_until_no_files(server, ids)
    # The other model's file is untouched.
    assert len(_files_of(server.settings.files_dir / "documents", [other])) == 1


async def test_deleting_a_model_while_its_documents_ingest_removes_every_file(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    # Warm the embedder first (a process loads it once), so the delete lands mid-pipeline.
    warm = await create_model(server.state.sessionmaker)
    await wait_for_final(superadmin, await upload_document(superadmin, warm.id, "warm.txt", _prose(5, 10)))
    model = await create_model(server.state.sessionmaker)
    ids = [await upload_document(superadmin, model.id, f"big-{n}.txt", _prose(n, 250)) for n in range(2)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = (await superadmin.execute(DOCUMENT, {"id": ids[0]}))["document"]["status"]
        if status in ("PARSING", "CHUNKING", "EMBEDDING"):
            break
        assert status not in ("READY", "FAILED"), "ingestion finished before the test could delete"
        await asyncio.sleep(0.02)
    deleted = (await superadmin.execute(DELETE_MODEL, {"id": str(model.id)}))["deleteModel"]
    assert deleted["__typename"] == "ModelDeleted" and deleted["filesQueuedForDeletion"] == 2
    deleted_at = time.monotonic()
    await _wait_until_no_files(server, ids, timeout=60)
    print(f"deleted while {status}; every file gone {time.monotonic() - deleted_at:.1f} s later")
    # And nothing turns up again once ingestion has noticed and stopped.
    await asyncio.sleep(1.0)
    assert _files_of(server.settings.files_dir / "documents", ids) == []
    assert _files_of(server.settings.files_dir / "spool", ids) == []


async def test_start_up_removes_stored_files_without_a_row(settings, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """A crash between storing an upload and committing its row leaves a file no row refers
    to: the start-up sweep removes it (files that have a row, or are too new to tell, stay)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from gql_server.db.engine import create_sessionmaker
    from gql_server.db.models import Document, DocumentKind, DocumentStatus

    documents = settings.files_dir / "documents"
    documents.mkdir(parents=True)
    engine = create_async_engine(database_url)
    try:
        model = await create_model(create_sessionmaker(engine))
        owned_id = uuid.uuid4()
        async with create_sessionmaker(engine).begin() as session:
            session.add(
                Document(
                    id=owned_id,
                    model_id=model.id,
                    filename="owned.txt",
                    title="owned",
                    kind=DocumentKind.TEXT,
                    size_bytes=5,
                    sha256="0" * 64,
                    storage_path=f"documents/{owned_id}.txt",
                    # READY and kept: start-up recovery would otherwise ingest this PENDING row
                    # and, with KEEP_ORIGINAL_FILES off, delete the file once it is searchable —
                    # a race with the assertion below (CI lost it once).
                    status=DocumentStatus.READY,
                    file_kept=True,
                )
            )
    finally:
        await engine.dispose()
    owned = documents / f"{owned_id}.txt"
    orphan = documents / f"{uuid.uuid4()}.txt"
    fresh = documents / f"{uuid.uuid4()}.txt"  # may be an upload committing right now
    old = time.time() - 3600
    for path in (owned, orphan, fresh):
        path.write_text("bytes")
    for path in (owned, orphan):
        os.utime(path, (old, old))
    uvicorn_server, task, _app, _url = await start_server(settings)
    try:
        deadline = time.monotonic() + 10
        while orphan.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not orphan.exists()
        assert owned.exists() and fresh.exists()
    finally:
        uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 30)
