"""A full disk: uploads answer a typed StorageFull, ingestion fails with a clear message.

The files dir is a real filesystem that really fills up: an 8 MB tmpfs mounted on
`DATA_DIR/files` for the test (we run as root, in CI too). Where mounting is not
permitted the tests are skipped with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gql_server.settings import Settings
from tests.chat_support import start_session
from tests.conftest import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, RunningServer, log_in, start_server
from tests.document_helpers import UPLOAD, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

DISK_FULL_MESSAGE = "The server's disk is full; ask an administrator to free space, then re-index."
ATTACH = """
mutation Attach($sessionId: UUID!, $file: Upload!) {
  attachFile(sessionId: $sessionId, file: $file) { __typename ... on Error { message } }
}
"""


def _mount_tmpfs(directory: Path, size: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs to fill up ({result.stderr.strip() or result.returncode}); "
            "these tests need root (CI runs them as root)"
        )


def _umount(directory: Path) -> None:
    subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest_asyncio.fixture
async def small_disk_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """The real server, with DATA_DIR/files on an 8 MB filesystem of its own."""
    _mount_tmpfs(settings.files_dir, "8m")
    try:
        uvicorn_server, task, app, base_url = await start_server(settings)
        try:
            async with httpx.AsyncClient(timeout=60) as http:
                yield RunningServer(base_url, app, settings, GraphQLClient(base_url, http))
        finally:
            uvicorn_server.should_exit = True
            await asyncio.wait_for(task, 30)
    finally:
        _umount(settings.files_dir)


def _fill(files_dir: Path, leave_free: int = 0) -> Path:
    """Write a filler file until the filesystem is full, then give `leave_free` bytes back."""
    filler = files_dir / "filler.bin"
    block = b"\0" * (256 * 1024)
    with filler.open("wb") as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(block)
                handle.flush()
        with contextlib.suppress(OSError):
            handle.flush()
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave_free))
    stat = os.statvfs(files_dir)
    assert stat.f_bavail * stat.f_frsize <= leave_free + 64 * 1024
    return filler


def _leftovers(files_dir: Path) -> list[str]:
    return sorted(
        str(path.relative_to(files_dir))
        for path in files_dir.rglob("*")
        if path.is_file() and path.name != "filler.bin"
    )


def _multipart(query: str, variables: dict, content: bytes) -> tuple[dict, dict]:
    operations = {"query": query, "variables": {**variables, "file": None}}
    data = {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})}
    return data, {"0": ("report.txt", content, "text/plain")}


def _text(size: int) -> bytes:
    line = b"The storage volume of the archive filled up during the night shift.\n"
    return (line * (size // len(line) + 1))[:size]


async def test_upload_to_a_full_disk_answers_storage_full(small_disk_server: RunningServer) -> None:
    server = small_disk_server
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    model = await create_model(server.state.sessionmaker)
    filler = _fill(server.settings.files_dir)

    data, files = _multipart(UPLOAD, {"modelId": str(model.id)}, _text(3 * 1024 * 1024))
    response = await server.client.http.post(
        server.base_url + "/graphql",
        data=data,
        files=files,
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    result = body["data"]["uploadDocument"]
    assert result["__typename"] == "StorageFull", body
    assert "disk" in result["message"].lower()
    assert _leftovers(server.settings.files_dir) == [], "the partial upload was left on disk"

    # The chat attachment path answers the same way.
    session_id = await start_session(admin, model.id)
    data, files = _multipart(ATTACH, {"sessionId": session_id}, _text(2 * 1024 * 1024))
    response = await server.client.http.post(
        server.base_url + "/graphql",
        data=data,
        files=files,
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attachFile"]["__typename"] == "StorageFull", response.text
    assert _leftovers(server.settings.files_dir) == []

    # Space freed: the same connection pool and server take the upload.
    filler.unlink()
    again = await admin.upload(UPLOAD, {"modelId": str(model.id)}, "file", "report.txt", _text(64 * 1024))
    assert again["data"]["uploadDocument"]["__typename"] == "DocumentUploaded", again


async def test_ingestion_on_a_full_disk_fails_with_a_clear_message(small_disk_server: RunningServer) -> None:
    server = small_disk_server
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    model = await create_model(server.state.sessionmaker)
    # Room for the upload itself (32 KB), not for its chunks' spool (text plus a 384-float
    # vector per chunk: several times the document).
    _fill(server.settings.files_dir, leave_free=48 * 1024)
    body = await admin.upload(UPLOAD, {"modelId": str(model.id)}, "file", "report.txt", _text(32 * 1024))
    result = body["data"]["uploadDocument"]
    assert result["__typename"] == "DocumentUploaded", body
    final = await wait_for_final(admin, result["document"]["id"], timeout=120)
    assert final["status"] == "FAILED", final
    assert final["error"] == DISK_FULL_MESSAGE
    spool = server.settings.files_dir / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


async def test_the_test_filesystem_really_fills(tmp_path: Path) -> None:
    """Guard against a silently mocked setup: the tmpfs refuses writes with ENOSPC."""
    target = tmp_path / "small"
    _mount_tmpfs(target, "1m")
    try:
        with pytest.raises(OSError) as raised:
            (target / "big").write_bytes(b"\0" * (2 * 1024 * 1024))
        assert raised.value.errno == errno.ENOSPC
    finally:
        _umount(target)


# --- Non-file multipart parts are bounded like any request body (MAX_REQUEST_BODY_KB) --------


@pytest_asyncio.fixture
async def small_body_server(settings: Settings) -> AsyncIterator[RunningServer]:
    settings.max_request_body_kb = 64
    uvicorn_server, task, app, base_url = await start_server(settings)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            yield RunningServer(base_url, app, settings, GraphQLClient(base_url, http))
    finally:
        uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 30)


async def test_multipart_form_fields_are_capped_at_the_request_body_limit(
    small_body_server: RunningServer,
) -> None:
    server = small_body_server
    admin = await log_in(server.client, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    model = await create_model(server.state.sessionmaker)
    headers = {"Authorization": f"Bearer {admin.token}"}
    # One huge `operations` part (100 KB of padding in the query document).
    padded = UPLOAD + "#" + "x" * (100 * 1024) + "\n"
    data, files = _multipart(padded, {"modelId": str(model.id)}, b"small file\n")
    response = await server.client.http.post(
        server.base_url + "/graphql", data=data, files=files, headers=headers
    )
    assert response.status_code == 413, response.text[:300]
    # Many parts that are each small but together too large.
    data, files = _multipart(UPLOAD, {"modelId": str(model.id)}, b"small file\n")
    data.update({f"extra{n}": "y" * 1024 for n in range(80)})
    response = await server.client.http.post(
        server.base_url + "/graphql", data=data, files=files, headers=headers
    )
    assert response.status_code == 413, response.text[:300]
    assert _leftovers(server.settings.files_dir) == []
    # Within the limit the same upload works.
    data, files = _multipart(UPLOAD, {"modelId": str(model.id)}, b"small file\n")
    response = await server.client.http.post(
        server.base_url + "/graphql", data=data, files=files, headers=headers
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["data"]["uploadDocument"]["__typename"] == "DocumentUploaded"
