"""Nothing in the data dir is readable by other users of the machine.

`ragql serve` as a process (its umask and start-up included): after an upload, every
directory ragql keeps under the data dir is 0700 and every file 0600 (secrets, uploads,
originals, spool). The embedded PostgreSQL's own folder is PostgreSQL's: it keeps it 0700
itself. A data dir left 0755/0644 by an older version is tightened at start-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gql_server.settings import Settings
from tests.conftest import start_server
from tests.serve_process import ServeProcess

PASSWORD = "private-files-password-1"
LOG_IN = f'mutation {{ logIn(email: "admin@localhost", password: "{PASSWORD}") {{ ... on AuthPayload {{ accessToken }} }} }}'
CREATE_MODEL = 'mutation { createModel(input: {name: "Private"}) { __typename ... on Model { id } } }'
UPLOAD = "mutation($m: UUID!, $f: Upload!) { uploadDocument(modelId: $m, file: $f) { __typename } }"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _loose_entries(data_dir: Path) -> list[str]:
    """Everything under the data dir (its postgres/ folder aside) that others could read."""
    loose = []
    for directory, subdirectories, files in os.walk(data_dir):
        here = Path(directory)
        if here == data_dir / "postgres":
            subdirectories[:] = []
            continue
        for name in subdirectories:
            if here / name != data_dir / "postgres" and _mode(here / name) != 0o700:
                loose.append(f"{here / name}: {oct(_mode(here / name))}")
        for name in files:
            if _mode(here / name) != 0o600:
                loose.append(f"{here / name}: {oct(_mode(here / name))}")
    return loose


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: as root, PostgreSQL runs as the `pgserver` user, which must
    # traverse the parent directories.
    root = Path(tempfile.mkdtemp(prefix="ragql-modes-"))
    try:
        yield root / "data"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_ragql_serve_keeps_the_data_dir_private(data_dir: Path) -> None:
    serve = ServeProcess(data_dir, env={"SUPERADMIN_PASSWORD": PASSWORD}).start()
    try:
        base = serve.base_url + "/graphql"
        token = httpx.post(base, json={"query": LOG_IN}, timeout=30).json()["data"]["logIn"]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        model = httpx.post(base, json={"query": CREATE_MODEL}, headers=headers, timeout=30).json()
        model_id = model["data"]["createModel"]["id"]
        operations = {"query": UPLOAD, "variables": {"m": model_id, "f": None}}
        uploaded = httpx.post(
            base,
            data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f"]})},
            files={"0": ("notes.txt", b"Private notes about the quarterly numbers.\n" * 200, "text/plain")},
            headers=headers,
            timeout=60,
        ).json()
        assert uploaded["data"]["uploadDocument"]["__typename"] == "DocumentUploaded", uploaded
        deadline = time.monotonic() + 30
        while not list((data_dir / "files" / "documents").glob("*.txt")) and time.monotonic() < deadline:
            time.sleep(0.1)

        stored = list((data_dir / "files" / "documents").glob("*.txt"))
        assert stored, "the original is kept under files/documents"
        for secret in ("secret_key", "encryption_keys"):
            assert _mode(data_dir / secret) == 0o600, secret
        assert _loose_entries(data_dir) == []
        # As root, PostgreSQL runs as the `pgserver` user and must pass through the data dir to
        # reach postgres/: the data dir is then 0711 (no listing), 0700 otherwise.
        expected = 0o711 if os.geteuid() == 0 else 0o700
        assert _mode(data_dir) == expected
        assert _mode(data_dir / "postgres") == 0o700  # PostgreSQL's own, and it keeps it so
        # ... and it can still read what ragql writes into it (ragql.conf, under umask 077).
        server_log = (data_dir / "postgres" / "log").read_text()
        assert "skipping missing configuration file" not in server_log, server_log[-2000:]
        # Whatever else the process creates (spool files, libraries' files) is private too.
        assert serve.process is not None
        status = Path(f"/proc/{serve.process.pid}/status").read_text()
        assert "Umask:\t0077" in status, [line for line in status.splitlines() if "Umask" in line]
    finally:
        assert serve.stop() in (0, -15)


@pytest.mark.asyncio
async def test_an_existing_loose_data_dir_is_tightened_at_start_up(settings: Settings) -> None:
    data_dir = settings.data_dir
    (data_dir / "files" / "documents").mkdir(parents=True)
    for directory in (data_dir, data_dir / "files", data_dir / "files" / "documents"):
        directory.chmod(0o755)
    old_upload = data_dir / "files" / "documents" / "0b6f6e2a-3c1d-4c55-9d7f-3a1b2c3d4e5f.txt"
    old_upload.write_text("an upload from an older version")
    old_upload.chmod(0o644)
    (data_dir / "secret_key").write_text("s" * 64)
    (data_dir / "secret_key").chmod(0o644)

    uvicorn_server, task, _app, _url = await start_server(settings)
    try:
        assert _loose_entries(data_dir) == []
        assert _mode(data_dir) == 0o700  # DATABASE_URL here: no embedded server to let through
        assert _mode(old_upload) == 0o600
    finally:
        uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 30)
