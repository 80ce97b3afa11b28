"""Shared GraphQL operations and helpers of the documents tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.graphql_client import GraphQLClient

DOCUMENT_FIELDS = """
id modelId filename title kind status progress sizeBytes sha256 pageCount rowCount chunkCount
error warnings fileKept attempts downloadUrl
"""

UPLOAD = f"""
mutation Upload($modelId: UUID!, $file: Upload!) {{
  uploadDocument(modelId: $modelId, file: $file) {{
    __typename
    ... on DocumentUploaded {{ document {{ {DOCUMENT_FIELDS} }} }}
    ... on DuplicateDocument {{ message existing {{ id filename }} }}
    ... on FileTooLarge {{ message maxBytes }}
    ... on Error {{ message }}
  }}
}}
"""

DOCUMENT = f"query Document($id: UUID!) {{ document(id: $id) {{ {DOCUMENT_FIELDS} }} }}"

DOCUMENTS = f"""
query Documents($modelId: UUID!, $first: Int, $offset: Int, $status: DocumentStatus) {{
  documents(modelId: $modelId, first: $first, offset: $offset, status: $status) {{
    __typename
    ... on DocumentPage {{ totalCount items {{ {DOCUMENT_FIELDS} }} }}
    ... on Error {{ message }}
  }}
}}
"""

DELETE = """
mutation Delete($id: UUID!) {
  deleteDocument(id: $id) { __typename ... on DocumentDeleted { id } ... on Error { message } }
}
"""

REINDEX = """
mutation Reindex($id: UUID!) {
  reindexDocument(id: $id) {
    __typename ... on DocumentReindexQueued { document { id status } } ... on Error { message }
  }
}
"""

PROGRESS = """
subscription Progress($id: UUID!) {
  documentProgress(documentId: $id) {
    documentId status progress percent pagesDone pageCount chunkCount elapsedSeconds etaSeconds error warnings deleted
  }
}
"""

EVENTS = """
subscription Events($modelId: UUID!) {
  documentEvents(modelId: $modelId) { documentId status progress chunkCount deleted }
}
"""

FINAL = ("READY", "FAILED")


async def upload(
    client: GraphQLClient, model_id: uuid.UUID | str, filename: str, content: bytes
) -> dict[str, Any]:
    body = await client.upload(UPLOAD, {"modelId": str(model_id)}, "file", filename, content)
    assert body.get("data"), body
    return body["data"]["uploadDocument"]


async def upload_document(
    client: GraphQLClient, model_id: uuid.UUID | str, filename: str, content: bytes
) -> str:
    result = await upload(client, model_id, filename, content)
    assert result["__typename"] == "DocumentUploaded", result
    return str(result["document"]["id"])


async def wait_for_final(client: GraphQLClient, document_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = (await client.execute(DOCUMENT, {"id": document_id}))["document"]
        if document["status"] in FINAL:
            return document
        await asyncio.sleep(0.2)
    raise AssertionError(f"document {document_id} did not finish in {timeout} s")


async def follow_progress(
    client: GraphQLClient, document_id: str, timeout: float = 180
) -> list[dict[str, Any]]:
    """Every documentProgress event until the subscription completes."""
    events: list[dict[str, Any]] = []
    async with client.subscription_connection() as connection:
        operation = await connection.subscribe(PROGRESS, {"id": document_id})
        async for payload in connection.results(operation, timeout=timeout):
            assert not payload.get("errors"), payload
            events.append(payload["data"]["documentProgress"])
    return events


async def chunk_rows(
    sessionmaker: async_sessionmaker[AsyncSession], document_id: str
) -> list[dict[str, Any]]:
    async with sessionmaker() as session:
        result = await session.execute(
            text(
                "SELECT chunk_index, text, context, page_start, page_end, row_start, row_end, location, "
                "token_count, model_id, session_id FROM document_chunks WHERE document_id = :id "
                "ORDER BY chunk_index"
            ),
            {"id": document_id},
        )
        return [dict(row._mapping) for row in result]
