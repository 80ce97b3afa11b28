"""The Model GraphQL type, written by hand (see README: strawberry-sqlalchemy-mapper does not
fit here) because it needs per-field permissions and must never expose the encrypted key.

Visible to everyone who may use the model: id, name, description, provider, llmModelName,
documentCount, timestamps. Administrators only (a FORBIDDEN error and null for others):
baseUrl, apiKeySet, apiKeyLast4, systemPrompt, temperature, maxOutputTokens,
contextWindowTokens, topK, hybridSearch, relevanceThreshold, grants.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gql_server.context import Info
from gql_server.db.models import ModelAccessGrant as GrantRow
from gql_server.db.models import ProviderKind, RagModel
from gql_server.kit.field_permissions import admin_only

if TYPE_CHECKING:
    from gql_server.groups.types import AccessGroup
    from gql_server.users.types import User


@strawberry.type(name="ModelAccessGrant", description="Access to a model for one group or one user.")
class ModelAccessGrant:
    row: strawberry.Private[GrantRow]

    @classmethod
    def from_row(cls, row: GrantRow) -> ModelAccessGrant:
        return cls(row=row)

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def model_id(self) -> uuid.UUID:
        return self.row.model_id

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="The group granted access (null for a grant to a single user).")
    async def group(
        self, info: Info
    ) -> Annotated[AccessGroup, strawberry.lazy("gql_server.groups.types")] | None:
        from gql_server.groups.loaders import group_by_id

        if self.row.group_id is None:
            return None
        return await info.context.loader("groups.by_id", group_by_id).load(self.row.group_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The user granted access (null for a grant to a group).")
    async def user(self, info: Info) -> Annotated[User, strawberry.lazy("gql_server.users.types")] | None:
        from gql_server.users.loaders import user_by_id

        if self.row.user_id is None:
            return None
        return await info.context.loader("users.by_id", user_by_id).load(self.row.user_id)  # type: ignore[no-any-return]


@strawberry.type(name="Model", description="A collection of documents and the LLM that answers over them.")
class Model:
    row: strawberry.Private[RagModel]

    @classmethod
    def from_row(cls, row: RagModel) -> Model:
        return cls(row=row)

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field
    def provider(self) -> ProviderKind:
        return self.row.provider

    @strawberry.field(description="The provider's model name, e.g. 'llama3.2' (null for EXTRACTIVE).")
    def llm_model_name(self) -> str | None:
        return self.row.llm_model_name

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at

    @strawberry.field(description="Documents in the model (files attached inside a chat are not counted).")
    async def document_count(self, info: Info) -> int:
        from gql_server.models.loaders import document_count

        return await info.context.loader("models.document_count", document_count).load(self.row.id)  # type: ignore[no-any-return]

    # --- administrators only -------------------------------------------------------------
    @strawberry.field(extensions=admin_only())
    def base_url(self) -> str | None:
        return self.row.base_url

    @strawberry.field(
        description="Whether an API key is stored. The key itself is never returned.", extensions=admin_only()
    )
    def api_key_set(self) -> bool | None:
        return self.row.api_key_encrypted is not None

    @strawberry.field(
        description="The last four characters of the stored key (keys of 8+ characters).",
        extensions=admin_only(),
    )
    def api_key_last4(self) -> str | None:
        return self.row.api_key_last4

    @strawberry.field(extensions=admin_only())
    def system_prompt(self) -> str | None:
        return self.row.system_prompt

    @strawberry.field(extensions=admin_only())
    def temperature(self) -> float | None:
        return self.row.temperature

    @strawberry.field(extensions=admin_only())
    def max_output_tokens(self) -> int | None:
        return self.row.max_output_tokens

    @strawberry.field(extensions=admin_only())
    def context_window_tokens(self) -> int | None:
        return self.row.context_window_tokens

    @strawberry.field(extensions=admin_only())
    def top_k(self) -> int | None:
        return self.row.top_k

    @strawberry.field(extensions=admin_only())
    def hybrid_search(self) -> bool | None:
        return self.row.hybrid_search

    @strawberry.field(description="Passages scoring below this (0-1) are not used.", extensions=admin_only())
    def relevance_threshold(self) -> float | None:
        return self.row.relevance_threshold

    @strawberry.field(description="Who may use the model. Administrators only.", extensions=admin_only())
    async def grants(self, info: Info) -> list[ModelAccessGrant] | None:
        from gql_server.models.loaders import grants_of_model

        rows = await info.context.loader("models.grants", grants_of_model).load(self.row.id)
        return [ModelAccessGrant.from_row(row) for row in rows]


@strawberry.type(
    description=(
        "The outcome of testModelConnection, in ragql's own words: nothing the provider "
        "answered (body, error text) is repeated."
    )
)
class ModelConnectionResult:
    ok: bool
    message: str
    latency_ms: float | None
    reachable: bool = strawberry.field(
        default=False, description="Whether the provider answered over HTTP at all."
    )
    http_status: int | None = strawberry.field(
        default=None, description="The HTTP status of the provider's answer, when there was one."
    )
    model_found: bool | None = strawberry.field(
        default=None, description="Whether the provider knows the model (null: not found out)."
    )


@strawberry.type
class ModelDeleted:
    id: uuid.UUID
    deleted_documents: int
    files_queued_for_deletion: int


@strawberry.type
class ModelAccessRevoked:
    model_id: uuid.UUID
    grant_id: uuid.UUID
