"""Role rules, groups, models and their bad inputs, against a real server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.db.models import (
    AuditLogEntry,
    Document,
    DocumentChunk,
    DocumentKind,
    PendingFileDeletion,
    RagModel,
    RefreshToken,
    Role,
)
from gql_server.storage.chunk_partitions import drop_orphan_chunk_partitions, partition_name
from gql_server.storage.file_sweeper import sweep_pending_file_deletions
from tests.conftest import LOG_IN, RunningServer
from tests.factories import DEFAULT_PASSWORD, client_for, create_model, create_user
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

RESULT = "{ __typename ... on User { id role isActive } ... on Error { message } }"


async def _act(client: GraphQLClient, mutation: str, user_id: Any) -> dict[str, Any]:
    data = await client.execute(
        f"mutation($id: UUID!) {{ {mutation}(userId: $id) {RESULT} }}", {"id": str(user_id)}
    )
    return data[mutation]


async def test_role_rules(server: RunningServer, superadmin: GraphQLClient) -> None:
    codec = server.state.tokens
    admin_user = await create_user(server.state.sessionmaker, role=Role.ADMIN)
    admin = client_for(server.client, codec, admin_user)
    other_admin = await create_user(server.state.sessionmaker, role=Role.ADMIN)
    plain = await create_user(server.state.sessionmaker)
    root_id = (await superadmin.execute("{ me { id } }"))["me"]["id"]

    promoted = await _act(admin, "promoteUser", plain.id)
    assert promoted["__typename"] == "User" and promoted["role"] == "ADMIN"
    # Only the superadmin demotes or deactivates administrators.
    assert (await _act(admin, "demoteUser", plain.id))["__typename"] == "Forbidden"
    assert (await _act(admin, "deactivateUser", other_admin.id))["__typename"] == "Forbidden"
    assert (await _act(superadmin, "demoteUser", plain.id))["role"] == "USER"
    # Nobody demotes or deactivates the superadmin, nor deactivates themselves.
    for client in (admin, superadmin):
        assert (await _act(client, "demoteUser", root_id))["__typename"] == "Forbidden"
        assert (await _act(client, "deactivateUser", root_id))["__typename"] == "Forbidden"
        assert (await _act(client, "promoteUser", root_id))["__typename"] == "Forbidden"
    assert (await _act(admin, "deactivateUser", admin_user.id))["__typename"] == "Forbidden"
    assert (await _act(admin, "promoteUser", uuid.uuid4()))["__typename"] == "NotFound"
    # A plain user cannot call these at all.
    body = await client_for(server.client, codec, plain).raw(
        "mutation($id: UUID!) { promoteUser(userId: $id) { __typename } }", {"id": str(plain.id)}
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with server.state.sessionmaker() as session:
        actions = set((await session.scalars(select(AuditLogEntry.action))).all())
    assert {"user.promote", "user.demote"} <= actions


async def test_deactivation_kills_tokens_at_once(server: RunningServer, superadmin: GraphQLClient) -> None:
    await create_user(server.state.sessionmaker, "victim@example.com")
    logged = (
        await server.client.execute(LOG_IN, {"email": "victim@example.com", "password": DEFAULT_PASSWORD})
    )["logIn"]
    victim = server.client.with_token(logged["accessToken"])
    assert (await victim.execute("{ me { id } }"))["me"] is not None
    assert (await _act(superadmin, "deactivateUser", logged["user"]["id"]))["isActive"] is False
    body = await victim.raw("{ models { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    refreshed = await server.client.execute(
        "mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }",
        {"t": logged["refreshToken"]},
    )
    assert refreshed["refreshToken"]["__typename"] == "InvalidRefreshToken"
    assert (await _act(superadmin, "reactivateUser", logged["user"]["id"]))["isActive"] is True
    # The old access token stays dead (token version was bumped); a new log-in works.
    assert (await victim.raw("{ models { totalCount } }"))["errors"]
    again = await server.client.execute(LOG_IN, {"email": "victim@example.com", "password": DEFAULT_PASSWORD})
    assert again["logIn"]["__typename"] == "AuthPayload"


CHANGE = """mutation($old: String!, $new: String!) { changePassword(oldPassword: $old, newPassword: $new) {
  __typename ... on AuthPayload { accessToken refreshToken } ... on InvalidInput { message fieldErrors { field } } } }"""


async def test_change_password_revokes_refresh_tokens(server: RunningServer) -> None:
    await create_user(server.state.sessionmaker, "pw@example.com")
    first = (await server.client.execute(LOG_IN, {"email": "pw@example.com", "password": DEFAULT_PASSWORD}))[
        "logIn"
    ]
    second = (await server.client.execute(LOG_IN, {"email": "pw@example.com", "password": DEFAULT_PASSWORD}))[
        "logIn"
    ]
    client = server.client.with_token(first["accessToken"])
    wrong = (await client.execute(CHANGE, {"old": "not-my-password-1", "new": "brand-new-pass-1"}))[
        "changePassword"
    ]
    assert wrong["__typename"] == "InvalidInput" and wrong["fieldErrors"][0]["field"] == "oldPassword"
    weak = (await client.execute(CHANGE, {"old": DEFAULT_PASSWORD, "new": "short"}))["changePassword"]
    assert weak["__typename"] == "InvalidInput" and weak["fieldErrors"][0]["field"] == "newPassword"
    done = (await client.execute(CHANGE, {"old": DEFAULT_PASSWORD, "new": "brand-new-pass-1"}))[
        "changePassword"
    ]
    assert done["__typename"] == "AuthPayload"
    for old in (first, second):
        refreshed = await server.client.execute(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }",
            {"t": old["refreshToken"]},
        )
        assert refreshed["refreshToken"]["__typename"] == "InvalidRefreshToken"
    assert (await client.raw("{ me { id } }"))["data"]["me"] is None  # old access token is dead
    fresh = server.client.with_token(done["accessToken"])
    assert (await fresh.execute("{ me { email } }"))["me"]["email"] == "pw@example.com"
    async with server.state.sessionmaker() as session:
        live = await session.scalar(
            select(func.count()).where(RefreshToken.revoked_at.is_(None), RefreshToken.used_at.is_(None))
        )
    assert live == 1


async def test_update_profile_and_oversized_name(server: RunningServer) -> None:
    user = await create_user(server.state.sessionmaker)
    client = client_for(server.client, server.state.tokens, user)
    query = (
        "mutation($n: String) { updateProfile(displayName: $n) { __typename ... on User { displayName } } }"
    )
    assert (await client.execute(query, {"n": "  Ada  "}))["updateProfile"]["displayName"] == "Ada"
    assert (await client.execute(query, {"n": "x" * 121}))["updateProfile"]["__typename"] == "InvalidInput"


GROUP = "mutation($n: String!) { createGroup(name: $n) { __typename ... on AccessGroup { id } ... on Error { message } } }"


async def test_groups_and_duplicate_names(server: RunningServer, superadmin: GraphQLClient) -> None:
    created = (await superadmin.execute(GROUP, {"n": "Engineering"}))["createGroup"]
    assert created["__typename"] == "AccessGroup"
    assert (await superadmin.execute(GROUP, {"n": "engineering"}))["createGroup"][
        "__typename"
    ] == "AlreadyExists"
    assert (await superadmin.execute(GROUP, {"n": "x" * 121}))["createGroup"]["__typename"] == "InvalidInput"
    assert (await superadmin.execute(GROUP, {"n": "   "}))["createGroup"]["__typename"] == "InvalidInput"
    member = await create_user(server.state.sessionmaker)
    add = await superadmin.execute(
        "mutation($g: UUID!, $u: UUID!) { addGroupMember(groupId: $g, userId: $u) { __typename ... on AccessGroup { memberCount } } }",
        {"g": created["id"], "u": str(member.id)},
    )
    assert add["addGroupMember"]["memberCount"] == 1
    mine = await client_for(server.client, server.state.tokens, member).execute("{ myGroups { name } }")
    assert mine["myGroups"] == [{"name": "Engineering"}]
    missing = await superadmin.execute(
        "mutation($g: UUID!, $u: UUID!) { addGroupMember(groupId: $g, userId: $u) { __typename } }",
        {"g": str(uuid.uuid4()), "u": str(member.id)},
    )
    assert missing["addGroupMember"]["__typename"] == "NotFound"


MODEL = """mutation($input: CreateModelInput!) { createModel(input: $input) {
  __typename ... on Model { id name } ... on InvalidInput { message fieldErrors { field message } } ... on AlreadyExists { field } } }"""


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"provider": "OLLAMA", "baseUrl": "not a url"}, "baseUrl"),
        ({"provider": "OPENAI_COMPATIBLE", "llmModelName": "gpt"}, "baseUrl"),
        ({"provider": "OLLAMA", "llmModelName": "llama3", "baseUrl": "ftp://host"}, "baseUrl"),
        ({"provider": "OLLAMA"}, "llmModelName"),
        ({"provider": "OLLAMA", "llmModelName": "llama3", "temperature": 2.5}, "temperature"),
        ({"temperature": -1}, "temperature"),
        ({"maxOutputTokens": 0}, "maxOutputTokens"),
        ({"topK": 51}, "topK"),
        ({"contextWindowTokens": 10}, "contextWindowTokens"),
        ({"relevanceThreshold": 1.5}, "relevanceThreshold"),
        ({"name": "x" * 121}, "name"),
        ({"systemPrompt": "x" * 20001}, "systemPrompt"),
        ({"provider": "ANTHROPIC", "llmModelName": "claude"}, "apiKey"),
        ({"apiKey": "has space inside"}, "apiKey"),
    ],
)
async def test_invalid_model_settings_write_nothing(
    server: RunningServer, superadmin: GraphQLClient, overrides: dict[str, Any], field: str
) -> None:
    data = await superadmin.execute(MODEL, {"input": {"name": "Bad", **overrides}})
    result = data["createModel"]
    assert result["__typename"] == "InvalidInput", result
    assert field in {error["field"] for error in result["fieldErrors"]}, result
    async with server.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(RagModel)) == 0
        assert await session.scalar(select(func.count()).select_from(AuditLogEntry)) == 0


async def test_duplicate_model_name_and_update(server: RunningServer, superadmin: GraphQLClient) -> None:
    first = (await superadmin.execute(MODEL, {"input": {"name": "Handbook"}}))["createModel"]
    assert first["__typename"] == "Model"
    dup = (await superadmin.execute(MODEL, {"input": {"name": "HANDBOOK"}}))["createModel"]
    assert dup == {"__typename": "AlreadyExists", "field": "name"}
    other = (await superadmin.execute(MODEL, {"input": {"name": "Other"}}))["createModel"]
    renamed = await superadmin.execute(
        'mutation($id: UUID!) { updateModel(id: $id, input: {name: "handbook"}) { __typename } }',
        {"id": other["id"]},
    )
    assert renamed["updateModel"]["__typename"] == "AlreadyExists"
    bad = await superadmin.execute(
        "mutation($id: UUID!) { updateModel(id: $id, input: {provider: OLLAMA}) { __typename ... on InvalidInput { fieldErrors { field } } } }",
        {"id": other["id"]},
    )
    assert bad["updateModel"]["__typename"] == "InvalidInput"
    async with server.state.sessionmaker() as session:
        row = await session.get(RagModel, uuid.UUID(other["id"]))
    assert row is not None and row.name == "Other" and row.provider.name == "EXTRACTIVE"


async def test_delete_model_removes_documents_chunks_and_files(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    sessionmaker = server.state.sessionmaker
    model = await create_model(sessionmaker, "Doomed")
    keep = await create_model(sessionmaker, "Kept")
    files_dir = server.settings.files_dir
    files_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    async with sessionmaker.begin() as session:
        for index, target in enumerate([model, model, keep]):
            path = files_dir / f"{uuid.uuid4().hex}.txt"
            path.write_text(f"file {index}")
            paths.append(path)
            document = Document(
                model_id=target.id,
                filename=path.name,
                title=path.name,
                kind=DocumentKind.TEXT,
                size_bytes=6,
                sha256=uuid.uuid4().hex * 2,
                storage_path=str(path),
            )
            session.add(document)
            await session.flush()
            session.add(
                DocumentChunk(
                    document_id=document.id,
                    model_id=target.id,
                    chunk_index=0,
                    text="hello",
                    token_count=1,
                    embedding=[0.1] * 384,
                )
            )
    data = await superadmin.execute(
        "mutation($id: UUID!) { deleteModel(id: $id) { __typename ... on ModelDeleted { deletedDocuments filesQueuedForDeletion } } }",
        {"id": str(model.id)},
    )
    assert data["deleteModel"] == {
        "__typename": "ModelDeleted",
        "deletedDocuments": 2,
        "filesQueuedForDeletion": 2,
    }
    for _ in range(100):
        if not paths[0].exists() and not paths[1].exists():
            break
        await asyncio.sleep(0.05)
    assert not paths[0].exists() and not paths[1].exists()
    assert paths[2].exists()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Document)) == 1
        assert await session.scalar(select(func.count()).select_from(DocumentChunk)) == 1
        for _ in range(50):
            if await session.scalar(select(func.count()).select_from(PendingFileDeletion)) == 0:
                break
            await asyncio.sleep(0.05)
        assert await session.scalar(select(func.count()).select_from(PendingFileDeletion)) == 0
    # Its chunk partition is detached and dropped after the delete; the other model's stays.
    for _ in range(100):
        if partition_name(model.id) not in await _chunk_tables(sessionmaker):
            break
        await asyncio.sleep(0.05)
    tables = await _chunk_tables(sessionmaker)
    assert partition_name(model.id) not in tables
    assert partition_name(keep.id) in tables
    again = await superadmin.execute(
        "mutation($id: UUID!) { deleteModel(id: $id) { __typename } }", {"id": str(model.id)}
    )
    assert again["deleteModel"]["__typename"] == "NotFound"


async def _chunk_tables(sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
    """Tables named like chunk partitions, attached or not."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'document\\_chunks\\_%'")
        )
        return set(rows.scalars())


async def test_chunk_partitions_of_deleted_models_are_swept_after_a_crash(server: RunningServer) -> None:
    """Models deleted without the sweep (a crash right after the commit), one partition
    already detached but not dropped (a crash between the two): the next sweep removes
    all three and touches no live model's partition."""
    sessionmaker = server.state.sessionmaker
    live = await create_model(sessionmaker, "Live")
    gone = [await create_model(sessionmaker, f"Gone {index}") for index in range(3)]
    async with sessionmaker.begin() as session:
        await session.execute(delete(RagModel).where(RagModel.id.in_([model.id for model in gone])))
    async with server.state.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(
            text(f"ALTER TABLE document_chunks DETACH PARTITION {partition_name(gone[1].id)}")
        )
    assert {partition_name(model.id) for model in gone} <= await _chunk_tables(sessionmaker)
    assert await drop_orphan_chunk_partitions(server.state.engine) == 3
    tables = await _chunk_tables(sessionmaker)
    assert not {partition_name(model.id) for model in gone} & tables
    assert partition_name(live.id) in tables
    assert await drop_orphan_chunk_partitions(server.state.engine) == 0


async def test_sweeper_finishes_after_a_crash(server: RunningServer) -> None:
    """Rows left behind by a crash between commit and unlink are swept later."""
    path = server.settings.data_dir / "orphan.bin"
    path.write_bytes(b"x")
    async with server.state.sessionmaker.begin() as session:
        session.add(PendingFileDeletion(path=str(path)))
        session.add(PendingFileDeletion(path=str(path) + ".already-gone"))
    assert await sweep_pending_file_deletions(server.state.sessionmaker) == 2
    assert not path.exists()


async def test_models_lists_only_usable_models_and_pages(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    from tests.factories import create_group, grant_model

    sessionmaker = server.state.sessionmaker
    user = await create_user(sessionmaker)
    group = await create_group(sessionmaker, members=[user])
    models = [await create_model(sessionmaker, f"m{index:02d}") for index in range(5)]
    await grant_model(sessionmaker, models[1], group=group)
    await grant_model(sessionmaker, models[3], user=user)
    client = client_for(server.client, server.state.tokens, user)
    page = (await client.execute("{ models(first: 10) { totalCount items { name } } }"))["models"]
    assert [item["name"] for item in page["items"]] == ["m01", "m03"] and page["totalCount"] == 2
    hidden = await client.execute("query($id: UUID!) { model(id: $id) { id } }", {"id": str(models[0].id)})
    assert hidden["model"] is None
    first = (await superadmin.execute("{ models(first: 2) { items { name } hasNextPage endCursor } }"))[
        "models"
    ]
    assert [item["name"] for item in first["items"]] == ["m00", "m01"] and first["hasNextPage"]
    second = (
        await superadmin.execute(
            "query($a: String) { models(first: 2, after: $a) { items { name } } }", {"a": first["endCursor"]}
        )
    )["models"]
    assert [item["name"] for item in second["items"]] == ["m02", "m03"]
    users = (await superadmin.execute('{ users(search: "root", first: 5) { totalCount items { role } } }'))[
        "users"
    ]
    assert users["totalCount"] == 1 and users["items"][0]["role"] == "SUPERADMIN"
