"""Matrix entries for documents (issue 4): list, get, upload, delete, re-index, progress subscriptions.

Subscriptions deny as if the document/model did not exist, with a NOT_FOUND error (their
result type is not a union: the SPA subscribes to the plain `DocumentProgress` type).
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.authz_matrix import MatrixEntry, Outcome, World, expect

Out = Outcome

ADMINS_ONLY_ON_READABLE = expect.per_actor(
    anonymous=Out.UNAUTHENTICATED,
    user=Out.HIDDEN,  # cannot see the model: as if it did not exist
    member=Out.REFUSED,  # sees the model, may not change its documents
    admin=Out.ALLOWED,
    superadmin=Out.ALLOWED,
    chat_token=Out.FORBIDDEN,  # @needsAdminScope: CHAT does not change documents
)


async def _model(world: World, actor: str) -> dict[str, Any]:
    return {"modelId": await world.id_of("model")}


async def _foreign_model(world: World, actor: str) -> dict[str, Any]:
    return {"modelId": await world.id_of("foreign_model")}


async def _document(world: World, actor: str) -> dict[str, Any]:
    return {"id": await world.id_of("document")}


async def _fresh_document(world: World, actor: str) -> dict[str, Any]:
    return {"id": await world.id_of("document", fresh=True)}


async def _upload(world: World, actor: str) -> dict[str, Any]:
    # Not a multipart request: admins get past authorization and receive InvalidInput.
    return {"modelId": await world.id_of("model"), "file": "not-a-multipart-file"}


ENTRIES = [
    MatrixEntry(
        field="documents",
        kind="query",
        document="query($modelId: UUID!) { documents(modelId: $modelId) { __typename } }",
        variables=_model,
        expect=expect.model_users(Out.HIDDEN),
    ),
    MatrixEntry(
        field="documents",
        kind="query",
        case="foreign model",
        document="query($modelId: UUID!) { documents(modelId: $modelId) { __typename } }",
        variables=_foreign_model,
        expect={**expect.model_users(Out.HIDDEN), "member": Out.HIDDEN},
    ),
    MatrixEntry(
        field="document",
        kind="query",
        document="query($id: UUID!) { document(id: $id) { id status downloadUrl } }",
        variables=_document,
        expect=expect.model_users(Out.HIDDEN),
    ),
    MatrixEntry(
        field="document",
        kind="query",
        case="unknown id",
        document="query($id: UUID!) { document(id: $id) { id } }",
        variables=lambda world, actor: {"id": str(uuid.uuid4())},
        expect={
            **dict.fromkeys(("user", "member", "admin", "superadmin", "chat_token"), Out.HIDDEN),
            "anonymous": Out.UNAUTHENTICATED,
        },
    ),
    MatrixEntry(
        field="uploadDocument",
        kind="mutation",
        document="mutation($modelId: UUID!, $file: Upload!) { uploadDocument(modelId: $modelId, file: $file) { __typename } }",
        variables=_upload,
        expect=ADMINS_ONLY_ON_READABLE,
    ),
    MatrixEntry(
        field="deleteDocument",
        kind="mutation",
        document="mutation($id: UUID!) { deleteDocument(id: $id) { __typename } }",
        variables=_fresh_document,
        expect=ADMINS_ONLY_ON_READABLE,
    ),
    MatrixEntry(
        field="reindexDocument",
        kind="mutation",
        document="mutation($id: UUID!) { reindexDocument(id: $id) { __typename } }",
        variables=_fresh_document,
        expect=ADMINS_ONLY_ON_READABLE,
    ),
    MatrixEntry(
        field="documentProgress",
        kind="subscription",
        document="subscription($id: UUID!) { documentProgress(documentId: $id) { documentId status } }",
        variables=_document,
        expect=expect.model_users(Out.HIDDEN),
    ),
    MatrixEntry(
        field="documentProgress",
        kind="subscription",
        case="unknown id",
        document="subscription($id: UUID!) { documentProgress(documentId: $id) { documentId } }",
        variables=lambda world, actor: {"id": str(uuid.uuid4())},
        expect={
            **dict.fromkeys(("user", "member", "admin", "superadmin", "chat_token"), Out.HIDDEN),
            "anonymous": Out.UNAUTHENTICATED,
        },
    ),
    MatrixEntry(
        field="documentEvents",
        kind="subscription",
        document="subscription($modelId: UUID!) { documentEvents(modelId: $modelId) { documentId status } }",
        variables=_model,
        expect=expect.model_users(Out.HIDDEN),
        # Events arrive only while documents are processed: silence means the stream is open.
        silent_means_allowed=True,
    ),
    MatrixEntry(
        field="documentEvents",
        kind="subscription",
        case="foreign model",
        document="subscription($modelId: UUID!) { documentEvents(modelId: $modelId) { documentId } }",
        variables=_foreign_model,
        expect={**expect.model_users(Out.HIDDEN), "member": Out.HIDDEN},
        silent_means_allowed=True,
    ),
]
