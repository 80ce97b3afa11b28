"""SQL for models ("collections"), their grants, documents and pending file deletions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import Enum

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.access.policy import model_is_readable
from gql_server.db.models import Document, ModelAccessGrant, PendingFileDeletion, ProviderKind, RagModel, User
from gql_server.kit.pagination import escape_like


class ModelOrder(Enum):
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    CREATED_AT_DESC = "CREATED_AT_DESC"
    UPDATED_AT_DESC = "UPDATED_AT_DESC"


_ORDERING = {
    ModelOrder.NAME_ASC: (func.lower(RagModel.name).asc(),),
    ModelOrder.NAME_DESC: (func.lower(RagModel.name).desc(),),
    ModelOrder.CREATED_AT_ASC: (RagModel.created_at.asc(),),
    ModelOrder.CREATED_AT_DESC: (RagModel.created_at.desc(),),
    ModelOrder.UPDATED_AT_DESC: (RagModel.updated_at.desc(),),
}


async def list_readable_models(
    session: AsyncSession,
    user: User,
    *,
    search: str | None,
    provider: ProviderKind | None,
    order: ModelOrder,
    limit: int,
    offset: int,
) -> tuple[Sequence[RagModel], int]:
    """The models `user` may use, filtered in SQL by the access policy."""
    conditions = [model_is_readable(user, RagModel.id)]
    if search and search.strip():
        pattern = f"%{escape_like(search.strip())}%"
        conditions.append(RagModel.name.ilike(pattern) | RagModel.description.ilike(pattern))
    if provider is not None:
        conditions.append(RagModel.provider == provider)
    rows = await session.scalars(
        select(RagModel)
        .where(*conditions)
        .order_by(*_ORDERING[order], RagModel.id)
        .limit(limit)
        .offset(offset)
    )
    total = await session.scalar(select(func.count()).select_from(RagModel).where(*conditions))
    return rows.all(), int(total or 0)


async def get_readable_model(session: AsyncSession, user: User, model_id: uuid.UUID) -> RagModel | None:
    return await session.scalar(
        select(RagModel).where(RagModel.id == model_id, model_is_readable(user, RagModel.id))
    )


async def get_model_for_update(session: AsyncSession, model_id: uuid.UUID) -> RagModel | None:
    return await session.get(RagModel, model_id, with_for_update=True, populate_existing=True)


async def name_taken(session: AsyncSession, name: str, except_id: uuid.UUID | None = None) -> bool:
    query = select(RagModel.id).where(func.lower(RagModel.name) == name.lower())
    if except_id is not None:
        query = query.where(RagModel.id != except_id)
    return await session.scalar(query) is not None


async def document_counts(session: AsyncSession, model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Documents of the model itself (files attached inside one chat are not counted)."""
    result = await session.execute(
        select(Document.model_id, func.count())
        .where(Document.model_id.in_(model_ids), Document.session_id.is_(None))
        .group_by(Document.model_id)
    )
    return {row[0]: int(row[1]) for row in result.all()}


async def grants_of_models(
    session: AsyncSession, model_ids: Sequence[uuid.UUID]
) -> Sequence[ModelAccessGrant]:
    rows = await session.scalars(
        select(ModelAccessGrant)
        .where(ModelAccessGrant.model_id.in_(model_ids))
        .order_by(ModelAccessGrant.created_at, ModelAccessGrant.id)
    )
    return rows.all()


async def find_grant(
    session: AsyncSession, model_id: uuid.UUID, *, group_id: uuid.UUID | None, user_id: uuid.UUID | None
) -> ModelAccessGrant | None:
    query = select(ModelAccessGrant).where(ModelAccessGrant.model_id == model_id)
    if group_id is not None:
        query = query.where(ModelAccessGrant.group_id == group_id)
    else:
        query = query.where(ModelAccessGrant.user_id == user_id)
    return await session.scalar(query)


async def queue_document_files_for_deletion(session: AsyncSession, model_id: uuid.UUID) -> int:
    """Copy every stored file path of the model's documents into pending_file_deletions
    (same transaction as the delete: a crash after commit leaves the sweeper a to-do list)."""
    paths = select(Document.storage_path).where(
        Document.model_id == model_id, Document.storage_path.is_not(None)
    )
    result = await session.execute(
        insert(PendingFileDeletion).from_select(["path"], paths).returning(PendingFileDeletion.id)
    )
    return len(result.all())


async def count_documents(session: AsyncSession, model_id: uuid.UUID) -> int:
    return int(await session.scalar(select(func.count()).where(Document.model_id == model_id)) or 0)


async def delete_model(session: AsyncSession, model_id: uuid.UUID) -> None:
    # Documents, chunks, chats and grants go through ON DELETE CASCADE.
    await session.execute(delete(RagModel).where(RagModel.id == model_id))


async def models_with_api_keys_for_update(session: AsyncSession) -> Sequence[RagModel]:
    rows = await session.scalars(
        select(RagModel)
        .where(RagModel.api_key_encrypted.is_not(None))
        .order_by(RagModel.id)
        .with_for_update()
    )
    return rows.all()


async def lock_chunk_partition_ddl(session: AsyncSession) -> None:
    """Take SHARE UPDATE EXCLUSIVE on the chunks' parent table before inserting a model.

    The models insert trigger ATTACHes a partition: SHARE UPDATE EXCLUSIVE on document_chunks,
    then SHARE ROW EXCLUSIVE on models (for the partition's foreign key). Two concurrent
    creations each held ROW EXCLUSIVE on models from their INSERT and waited for the other's
    lock: "deadlock detected" (8 parallel createModel calls: 4-7 failed). Taking the parent's
    lock before the INSERT orders them. It does not block retrieval, ingestion or deletes
    (ACCESS SHARE / ROW EXCLUSIVE don't conflict with it); model creations queue behind each
    other and behind a partition detach.
    """
    await session.execute(text("LOCK TABLE document_chunks IN SHARE UPDATE EXCLUSIVE MODE"))
