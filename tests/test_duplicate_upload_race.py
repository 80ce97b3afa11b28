"""The same file uploaded twice at the same moment to one model: one wins, one is a duplicate.

Before the fix, 4 of 8 rounds answered INTERNAL_SERVER_ERROR: the unique index on
(model_id, sha256) fired in the losing transaction, and the session then failed with
"Can't operate on closed transaction" instead of answering `DuplicateDocument`.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from gql_server.db.models import Document
from gql_server.documents.storage import incoming_dir
from tests.conftest import RunningServer
from tests.document_helpers import upload
from tests.factories import create_model
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

ROUNDS = 8


async def test_concurrent_identical_uploads_give_one_document_and_one_duplicate(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    for round_number in range(ROUNDS):
        content = f"Round {round_number}: {uuid.uuid4().hex}. The same bytes, twice at once.\n".encode()
        results = await asyncio.gather(
            upload(superadmin, model.id, f"same-{round_number}.txt", content),
            upload(superadmin, model.id, f"same-{round_number}.txt", content),
        )
        kinds = sorted(result["__typename"] for result in results)
        assert kinds == ["DocumentUploaded", "DuplicateDocument"], (round_number, results)
        winner = next(result for result in results if result["__typename"] == "DocumentUploaded")
        loser = next(result for result in results if result["__typename"] == "DuplicateDocument")
        # The duplicate names the document that won the race.
        assert loser["existing"]["id"] == winner["document"]["id"], results
    async with server.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Document).where(Document.model_id == model.id)
        )
        stored = set(
            (
                await session.execute(select(Document.storage_path).where(Document.model_id == model.id))
            ).scalars()
        )
    assert count == ROUNDS
    # No orphans: nothing waits in files/incoming, and every file under files/documents has a row.
    # (Ingestion may already have removed a file it does not keep; that is not an orphan.)
    files_dir = server.settings.files_dir
    leftovers = list(incoming_dir(server.settings).iterdir())
    assert leftovers == [], leftovers
    on_disk = {
        path.relative_to(files_dir).as_posix()
        for path in (files_dir / "documents").rglob("*")
        if path.is_file()
    }
    assert on_disk <= {str(path) for path in stored}, (on_disk, stored)
