"""Provider API keys: encrypted at rest, never returned, and surviving key rotation."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, text

from gql_server.db.models import RagModel
from gql_server.security.encryption import ApiKeyCipher, ApiKeyDecryptionError, load_key_file
from gql_server.security.rotation import reencrypt_api_keys, rotate_encryption_key
from tests.conftest import RunningServer
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

SECRET = "sk-live-" + uuid.uuid4().hex + "WXYZ"

CREATE = """
mutation($input: CreateModelInput!) {
  createModel(input: $input) {
    __typename
    ... on Model { id apiKeySet apiKeyLast4 }
    ... on InvalidInput { message fieldErrors { field message } }
  }
}
"""

EVERY_FIELD = """
query($id: UUID!) {
  model(id: $id) {
    id name description provider llmModelName createdAt updatedAt documentCount
    baseUrl apiKeySet apiKeyLast4 systemPrompt temperature maxOutputTokens contextWindowTokens
    topK hybridSearch relevanceThreshold
    grants { id modelId createdAt group { id name } user { id email } }
  }
  models(first: 100) { items { id name baseUrl apiKeySet apiKeyLast4 systemPrompt } }
  auditLog(first: 50) { items { action details targetId } }
}
"""


async def _create_with_key(superadmin: GraphQLClient) -> str:
    data = await superadmin.execute(
        CREATE,
        {
            "input": {
                "name": "Secret model",
                "provider": "OPENAI_COMPATIBLE",
                "llmModelName": "gpt-4o-mini",
                "baseUrl": "http://127.0.0.1:9/v1",
                "apiKey": SECRET,
            }
        },
    )
    result = data["createModel"]
    assert result["__typename"] == "Model", result
    assert result["apiKeySet"] is True
    assert result["apiKeyLast4"] == "WXYZ"
    return str(result["id"])


async def _row_text(server: RunningServer, model_id: str) -> str:
    async with server.state.sessionmaker() as session:
        row = (
            await session.execute(
                text("SELECT row_to_json(m)::text FROM models m WHERE id = :id"), {"id": model_id}
            )
        ).scalar_one()
    return str(row)


async def test_api_key_is_encrypted_and_never_returned(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model_id = await _create_with_key(superadmin)
    # The column holds a Fernet token, and the plaintext is nowhere in the row.
    async with server.state.sessionmaker() as session:
        stored = await session.scalar(
            select(RagModel.api_key_encrypted).where(RagModel.id == uuid.UUID(model_id))
        )
    assert stored is not None and SECRET.encode() not in stored
    row = await _row_text(server, model_id)
    assert SECRET not in row and SECRET.encode().hex() not in row
    assert server.state.cipher.decrypt(stored) == SECRET
    # The API never returns it: every field of `model`, the list, and the audit log.
    body = await superadmin.raw(EVERY_FIELD, {"id": model_id})
    assert not body.get("errors"), body
    dumped = json.dumps(body)
    assert SECRET not in dumped
    assert SECRET[:-4] not in dumped
    assert body["data"]["model"]["apiKeySet"] is True
    assert body["data"]["model"]["apiKeyLast4"] == "WXYZ"
    assert any(entry["action"] == "model.create" for entry in body["data"]["auditLog"]["items"])


async def test_clear_api_key(server: RunningServer, superadmin: GraphQLClient) -> None:
    model_id = await _create_with_key(superadmin)
    data = await superadmin.execute(
        """mutation($id: UUID!) { updateModel(id: $id, input: {clearApiKey: true}) {
            __typename ... on Model { apiKeySet apiKeyLast4 } } }""",
        {"id": model_id},
    )
    assert data["updateModel"] == {"__typename": "Model", "apiKeySet": False, "apiKeyLast4": None}
    async with server.state.sessionmaker() as session:
        assert (
            await session.scalar(select(RagModel.api_key_encrypted).where(RagModel.id == uuid.UUID(model_id)))
            is None
        )


async def test_key_survives_rotation(
    server: RunningServer, superadmin: GraphQLClient, capsys: pytest.CaptureFixture[str]
) -> None:
    model_id = await _create_with_key(superadmin)
    settings = server.settings
    key_file = settings.data_dir / "encryption_keys"
    old_keys = load_key_file(key_file)
    assert len(old_keys) == 1

    # The CLI's code path: a new key is put first in the key file, every value re-encrypted.
    assert await rotate_encryption_key(settings, add_key=True) == 0
    assert "Re-encrypted 1 API key" in capsys.readouterr().out
    new_keys = load_key_file(key_file)
    assert len(new_keys) == 2 and new_keys[1] == old_keys[0]

    async with server.state.sessionmaker() as session:
        stored = await session.scalar(
            select(RagModel.api_key_encrypted).where(RagModel.id == uuid.UUID(model_id))
        )
    assert stored is not None
    # Readable with the new key alone: the old key can be removed.
    assert ApiKeyCipher([new_keys[0]]).decrypt(stored) == SECRET
    with pytest.raises(ApiKeyDecryptionError):
        ApiKeyCipher(old_keys).decrypt(stored)
    key_file.write_text(new_keys[0] + "\n")
    assert ApiKeyCipher(settings.encryption_key_list()).decrypt(stored) == SECRET
    assert SECRET not in await _row_text(server, model_id)


async def test_rotation_with_environment_keys_asks_the_operator(server: RunningServer) -> None:
    settings = server.settings.model_copy(update={"encryption_keys": "x"})
    assert await rotate_encryption_key(settings, add_key=True) == 2


async def test_reencrypt_is_one_transaction(server: RunningServer, superadmin: GraphQLClient) -> None:
    await _create_with_key(superadmin)
    count = await reencrypt_api_keys(server.state.sessionmaker, server.state.cipher)
    assert count == 1
