"""Every real file of ../shared/data/docs/formats through the upload API (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.document_helpers import upload, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

FORMATS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs" / "formats"
# Refused or FAILED, with a reason: encrypted.
MUST_FAIL = {"unstructured__password_protected.xlsx"}
# A photograph with no text: READY with no chunks and a warning.
NO_TEXT = {"unstructured__example.jpg"}


@pytest.mark.skipif(not FORMATS.is_dir(), reason="../shared/data/docs/formats is absent")
async def test_every_shared_format_file(server: RunningServer, superadmin: GraphQLClient) -> None:
    model = await create_model(server.state.sessionmaker)
    files = sorted(FORMATS.iterdir())
    assert len(files) >= 20
    uploaded: dict[str, str] = {}
    for path in files:
        result = await upload(superadmin, model.id, path.name, path.read_bytes())
        if result["__typename"] == "DocumentUploaded":
            uploaded[path.name] = str(result["document"]["id"])
        else:
            assert path.name in MUST_FAIL and result["message"], (path.name, result)
    for name, document_id in uploaded.items():
        document = await wait_for_final(superadmin, document_id, timeout=300)
        if name in MUST_FAIL:
            assert document["status"] == "FAILED" and document["error"], (name, document)
        elif name in NO_TEXT:
            assert document["status"] == "READY" and document["warnings"], (name, document)
        else:
            assert document["status"] == "READY" and document["chunkCount"] > 0, (name, document)
