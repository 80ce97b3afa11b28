"""`ragql ingest MODEL PATH...`: add files to a model from the command line, one progress bar per file.

Accepts each file the way an upload is accepted (`gql_server/documents/acceptance.py`:
sha256, content sniffing, duplicate check, row, file in files_dir) and runs the same
ingestion, in this process; progress comes from the same events the subscriptions deliver
(published on Redis too when REDIS_URL is set, so the web app shows these files moving as
well).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
import uuid
from pathlib import Path

from sqlalchemy import func, select
from tqdm import tqdm

from gql_server.access.policy import can_manage_models
from gql_server.auth import repository as auth_repository
from gql_server.database_setup import open_database
from gql_server.db.models import RagModel, User
from gql_server.documents import repository
from gql_server.documents.acceptance import accept_document
from gql_server.documents.progress import document_channel
from gql_server.documents.storage import incoming_dir, remove_file
from gql_server.documents.uploads import IncomingFile
from gql_server.events.bus import create_event_bus
from gql_server.events.kinds import DocumentProgressed
from gql_server.exceptions import DuplicateDocumentError, UnsupportedFileTypeError
from gql_server.settings import Settings
from workers.ingestion import IngestionResources, ingest_document


def _copy_with_hash(source: Path, target: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        while block := reader.read(1024 * 1024):
            digest.update(block)
            writer.write(block)
            size += len(block)
    return size, digest.hexdigest()


async def _find_model(session, reference: str) -> RagModel | None:  # type: ignore[no-untyped-def]
    try:
        found = await session.get(RagModel, uuid.UUID(reference))
        if found is not None:
            return found  # type: ignore[no-any-return]
    except ValueError:
        pass
    query = select(RagModel).where(func.lower(RagModel.name) == reference.strip().lower())
    return (await session.execute(query)).scalar_one_or_none()  # type: ignore[no-any-return]


async def _ingest_all(settings: Settings, model_reference: str, paths: list[Path], email: str | None) -> int:
    database = await open_database(settings, migrate=settings.migrate_on_start, pool_size=4)
    bus = create_event_bus(settings.redis_url)
    failures = 0
    try:
        async with database.sessionmaker() as session:
            user: User | None = (
                await auth_repository.get_user_by_email(session, email)
                if email
                else await auth_repository.get_superadmin(session)
            )
            model = await _find_model(session, model_reference)
        if user is None or not can_manage_models(user):
            print(f"{email or 'the superadmin'} is not an active administrator", file=sys.stderr)
            return 2
        if model is None:
            print(f"no model named or with id {model_reference!r}", file=sys.stderr)
            return 2
        resources = IngestionResources(
            settings=settings,
            engine=database.engine,
            sessionmaker=database.sessionmaker,
            bus=bus,
            concurrency=1,
        )
        for path in paths:
            if not path.is_file():
                print(f"{path}: not a file", file=sys.stderr)
                failures += 1
                continue
            failures += 0 if await _ingest_one(resources, model, user, path) else 1
    finally:
        await bus.close()
        await database.close()
    return 1 if failures else 0


async def _ingest_one(resources: IngestionResources, model: RagModel, user: User, path: Path) -> bool:
    settings = resources.settings
    temporary = incoming_dir(settings) / f"{uuid.uuid4().hex}.part"
    size, sha256 = await asyncio.to_thread(_copy_with_hash, path, temporary)
    incoming = IncomingFile(
        field_name="file", filename=path.name, content_type="", path=temporary, size=size, sha256=sha256
    )
    try:
        if size > settings.max_upload_bytes:
            print(f"{path.name}: larger than MAX_UPLOAD_MB ({settings.max_upload_mb} MB)", file=sys.stderr)
            return False
        try:
            document = await accept_document(
                settings=settings,
                sessionmaker=resources.sessionmaker,
                bus=resources.bus,
                queue=None,  # ingested right here, below
                incoming=incoming,
                model_id=model.id,
                chat_session_id=None,
                uploaded_by_id=user.id,
            )
        except UnsupportedFileTypeError as refused:
            print(f"{path.name}: {refused.message.removesuffix('.')}", file=sys.stderr)
            return False
        except DuplicateDocumentError as duplicate:
            print(f"{path.name}: already in {model.name} as {duplicate.existing.filename}", file=sys.stderr)
            return True
        document_id = document.id
        bar = tqdm(
            total=100, desc=path.name[:40], unit="%", bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}"
        )
        async with resources.bus.subscribe(document_channel(document_id)) as events:

            async def follow() -> None:
                async for event in events:
                    if not isinstance(event, DocumentProgressed):
                        continue
                    bar.n = int(event.progress * 100)
                    bar.set_postfix_str(f"{event.status.value} · {event.chunk_count} chunks")

            follower = asyncio.create_task(follow())
            try:
                await ingest_document(resources, document_id)
            finally:
                follower.cancel()
        async with resources.sessionmaker() as session:
            row = await repository.get_document(session, document_id)
        bar.n = 100 if row is not None and row.status.value == "READY" else bar.n
        bar.set_postfix_str(f"{row.status.value if row else 'gone'} · {row.chunk_count if row else 0} chunks")
        bar.close()
        if row is None or row.status.value != "READY":
            print(f"{path.name}: FAILED — {row.error if row else 'deleted'}", file=sys.stderr)
            return False
        for warning in row.warnings:
            print(f"{path.name}: warning: {warning}", file=sys.stderr)
        return True
    finally:
        if not incoming.consumed:
            remove_file(temporary)


def ingest_command(settings: Settings, model: str, paths: list[Path], email: str | None) -> int:
    shutil.get_terminal_size()  # tqdm sizes its bars from the terminal
    return asyncio.run(_ingest_all(settings, model, paths, email))
