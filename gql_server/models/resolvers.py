"""Model queries and mutations: thin — parse, check the role, call models.service, map."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

import strawberry
from strawberry.types.unset import UNSET

from gql_server.access.watch import RECHECK_SECONDS, AccessLost, watch_access
from gql_server.context import Info
from gql_server.db.models import ProviderKind, User
from gql_server.errors import AlreadyExists, InvalidInput, NotFound, maps_domain_errors
from gql_server.events.bus import ACCESS_CHANNEL, AccessChanged, AccessChangeReason, publish_access_changed
from gql_server.exceptions import NotFoundError
from gql_server.kit.field_permissions import admin_only, signed_in
from gql_server.kit.page import Page, build_page, parse_page_arguments
from gql_server.kit.transactions import in_transaction
from gql_server.llm.url_policy import policy_from_settings
from gql_server.models import repository, service
from gql_server.models.repository import ModelOrder
from gql_server.models.service import ModelChanges
from gql_server.models.types import (
    Model,
    ModelAccessGrant,
    ModelAccessRevoked,
    ModelConnectionResult,
    ModelDeleted,
)
from gql_server.storage.file_sweeper import request_file_sweep


@strawberry.input(description="A new model. Only `name` is required; EXTRACTIVE needs no LLM.")
class CreateModelInput:
    name: str
    description: str | None = None
    provider: ProviderKind = ProviderKind.EXTRACTIVE
    llm_model_name: str | None = None
    base_url: str | None = None
    api_key: str | None = strawberry.field(default=None, description="Write-only; stored encrypted.")
    system_prompt: str | None = None
    temperature: float = 0.2
    max_output_tokens: int = 1024
    context_window_tokens: int = 8192
    top_k: int = 6
    hybrid_search: bool = True
    relevance_threshold: float | None = None


@strawberry.input(description="Fields left out stay as they are; null clears the nullable ones.")
class UpdateModelInput:
    name: str | None = UNSET
    description: str | None = UNSET
    provider: ProviderKind | None = UNSET
    llm_model_name: str | None = UNSET
    base_url: str | None = UNSET
    api_key: str | None = strawberry.field(default=UNSET, description="Write-only; stored encrypted.")
    clear_api_key: bool = False
    system_prompt: str | None = UNSET
    temperature: float | None = UNSET
    max_output_tokens: int | None = UNSET
    context_window_tokens: int | None = UNSET
    top_k: int | None = UNSET
    hybrid_search: bool | None = UNSET
    relevance_threshold: float | None = UNSET


CreateModelResult = Annotated[Model | InvalidInput | AlreadyExists, strawberry.union("CreateModelResult")]
UpdateModelResult = Annotated[
    Model | NotFound | InvalidInput | AlreadyExists, strawberry.union("UpdateModelResult")
]
DeleteModelResult = Annotated[ModelDeleted | NotFound, strawberry.union("DeleteModelResult")]
GrantModelAccessResult = Annotated[
    ModelAccessGrant | NotFound | InvalidInput, strawberry.union("GrantModelAccessResult")
]
RevokeModelAccessResult = Annotated[
    ModelAccessRevoked | NotFound | InvalidInput, strawberry.union("RevokeModelAccessResult")
]
TestModelConnectionResult = Annotated[
    ModelConnectionResult | NotFound, strawberry.union("TestModelConnectionResult")
]


def _changes(values: dict[str, Any], api_key: Any, clear_api_key: bool) -> ModelChanges:
    present = {key: value for key, value in values.items() if value is not UNSET}
    return service.model_changes(present, api_key if api_key not in (UNSET, None) else None, clear_api_key)


def _input_values(data: CreateModelInput | UpdateModelInput) -> dict[str, Any]:
    return {key: getattr(data, key) for key in service.SETTING_FIELDS}


@strawberry.type
class ModelsQuery:
    @strawberry.field(
        description="The models you may use (administrators: all), filtered, sorted and paged.",
        extensions=signed_in(),
    )
    async def models(
        self,
        info: Info,
        first: int = 20,
        offset: int | None = None,
        after: str | None = None,
        search: str | None = None,
        provider: ProviderKind | None = None,
        order_by: ModelOrder = ModelOrder.NAME_ASC,
    ) -> Page[Model]:
        user = info.context.require_user()
        request = parse_page_arguments(first, offset, after)
        async with info.context.sessionmaker() as session:
            rows, total = await repository.list_readable_models(
                session,
                user,
                search=search[:200] if search else None,
                provider=provider,
                order=order_by,
                limit=request.limit,
                offset=request.offset,
            )
        return build_page([Model.from_row(row) for row in rows], total, request)

    @strawberry.field(
        description="One model, or null when it does not exist or you may not use it.", extensions=signed_in()
    )
    async def model(self, info: Info, id: uuid.UUID) -> Model | None:
        user = info.context.require_user()
        async with info.context.sessionmaker() as session:
            row = await repository.get_readable_model(session, user, id)
        return Model.from_row(row) if row is not None else None


@strawberry.type
class ModelsMutation:
    @strawberry.mutation(description="Create a model. Administrators only.", extensions=admin_only())
    @maps_domain_errors
    async def create_model(self, info: Info, input: CreateModelInput) -> CreateModelResult:
        actor = info.context.require_user()
        state = info.context.state
        changes = _changes(_input_values(input), input.api_key, False)
        row = await in_transaction(
            state.sessionmaker,
            lambda session: service.create_model(
                session, actor, changes, state.cipher, policy_from_settings(state.settings)
            ),
        )
        # Administrators see every model: their open model lists refresh.
        await publish_access_changed(
            state.bus, AccessChanged.of(AccessChangeReason.MODEL_CREATED, model_ids=[row.id])
        )
        return Model.from_row(row)

    @strawberry.mutation(
        description="Change a model's settings. Administrators only.", extensions=admin_only()
    )
    @maps_domain_errors
    async def update_model(self, info: Info, id: uuid.UUID, input: UpdateModelInput) -> UpdateModelResult:
        actor = info.context.require_user()
        state = info.context.state
        changes = _changes(_input_values(input), input.api_key, input.clear_api_key)
        async with state.sessionmaker.begin() as session:
            row = await service.update_model(
                session, actor, id, changes, state.cipher, policy_from_settings(state.settings)
            )
        await publish_access_changed(
            state.bus, AccessChanged.of(AccessChangeReason.MODEL_UPDATED, model_ids=[id])
        )
        return Model.from_row(row)

    @strawberry.mutation(
        description="Delete a model with its documents, chunks, files and chats. Administrators only.",
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def delete_model(self, info: Info, id: uuid.UUID) -> DeleteModelResult:
        actor = info.context.require_user()
        state = info.context.state
        documents, files = await in_transaction(
            state.sessionmaker, lambda session: service.delete_model(session, actor, id)
        )
        # After the commit: open subscriptions on the model end (gql_server/access/watch.py).
        await publish_access_changed(
            state.bus, AccessChanged.of(AccessChangeReason.MODEL_DELETED, model_ids=[id])
        )
        request_file_sweep(state)  # its files, and its now empty chunk partition
        return ModelDeleted(id=id, deleted_documents=documents, files_queued_for_deletion=files)

    @strawberry.mutation(
        description="Let a group or a single user use a model (give exactly one). Administrators only.",
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def grant_model_access(
        self,
        info: Info,
        model_id: uuid.UUID,
        group_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
    ) -> GrantModelAccessResult:
        actor = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            grant = await service.grant_access(session, actor, model_id, group_id=group_id, user_id=user_id)
        # After the commit: open model lists of the user (or of everyone, for a group) refresh.
        change = AccessChanged.of(
            AccessChangeReason.GRANT_ADDED, user_ids=[user_id], model_ids=[model_id], group_id=group_id
        )
        await publish_access_changed(info.context.state.bus, change)
        return ModelAccessGrant.from_row(grant)

    @strawberry.mutation(
        description="Take back a group's or a user's access. Administrators only.", extensions=admin_only()
    )
    @maps_domain_errors
    async def revoke_model_access(
        self,
        info: Info,
        model_id: uuid.UUID,
        group_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
    ) -> RevokeModelAccessResult:
        actor = info.context.require_user()
        async with info.context.sessionmaker.begin() as session:
            grant_id = await service.revoke_access(
                session, actor, model_id, group_id=group_id, user_id=user_id
            )
        # After the commit: the user's (or every member's) open subscriptions re-check.
        change = AccessChanged.of(
            AccessChangeReason.GRANT_REVOKED, user_ids=[user_id], model_ids=[model_id], group_id=group_id
        )
        await publish_access_changed(info.context.state.bus, change)
        return ModelAccessRevoked(model_id=model_id, grant_id=grant_id)

    @strawberry.mutation(
        description="Check that the model's provider is reachable, accepts the key and knows the model.",
        extensions=admin_only(),
    )
    @maps_domain_errors
    async def test_model_connection(self, info: Info, model_id: uuid.UUID) -> TestModelConnectionResult:
        actor = info.context.require_user()
        state = info.context.state
        async with state.sessionmaker() as session:
            row = await repository.get_readable_model(session, actor, model_id)
        if row is None:
            raise NotFoundError("The model was not found.")
        result = await service.test_connection(row, state.cipher, policy_from_settings(state.settings))
        return ModelConnectionResult(
            ok=result.ok,
            message=result.message,
            latency_ms=result.latency_ms,
            reachable=result.reachable,
            http_status=result.http_status,
            model_found=result.model_found,
        )


# Access changes often come in bursts (a group granted several models, a sync of many
# memberships): re-list once after the burst instead of once per change.
VISIBLE_MODELS_SETTLE_SECONDS = 0.05


def _list_signature(page: tuple[list[Any], int]) -> tuple[object, ...]:
    rows, total = page
    return (total, *((row.id, row.name, row.description, row.provider, row.llm_model_name) for row in rows))


async def _visible_models(state: Any, user_id: uuid.UUID, first: int) -> AsyncIterator[Page[Model]]:
    """The caller's model list now, then again whenever an access change that may concern
    them (their own, or one naming no user: a model created, renamed, granted to a group…)
    alters it; and on a timer, for a change whose message was lost."""
    request = parse_page_arguments(first, None, None)

    async def current() -> tuple[list[Any], int]:
        async with state.sessionmaker() as session:
            user = await session.get(User, user_id)
            if user is None:
                return [], 0
            rows, total = await repository.list_readable_models(
                session,
                user,
                search=None,
                provider=None,
                order=ModelOrder.NAME_ASC,
                limit=request.limit,
                offset=0,
            )
            return list(rows), total

    # Subscribe before the first read, so a change committed in between is not missed.
    async with state.bus.subscribe(ACCESS_CHANNEL) as changes:
        page = await current()
        last = _list_signature(page)
        yield build_page([Model.from_row(row) for row in page[0]], page[1], request)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECHECK_SECONDS):
                    await changes.wait_pending()
                    await asyncio.sleep(VISIBLE_MODELS_SETTLE_SECONDS)
            waiting = changes.take_waiting()
            if waiting and not any(
                isinstance(change, AccessChanged) and (not change.user_ids or user_id in change.user_ids)
                for change in waiting
            ):
                continue
            page = await current()
            signature = _list_signature(page)
            if signature != last:
                last = signature
                yield build_page([Model.from_row(row) for row in page[0]], page[1], request)


@strawberry.type
class ModelsSubscription:
    @strawberry.subscription(
        description=(
            "The models you may use, as `models(first:)` sorted by name: first the list now, then the new list "
            "each time it changes — a grant or revoke (for you or a group of yours), a group membership, a role "
            "change, a model created, renamed or deleted — without reloading. Ends with UNAUTHENTICATED when "
            "your account is deactivated or signed out."
        ),
        extensions=signed_in(),
    )
    async def visible_models(self, info: Info, first: int = 100) -> AsyncGenerator[Page[Model], None]:
        state = info.context.state

        async def account_only(session: Any, fresh: User) -> bool:
            return True  # the list itself never ends; only the account can

        async with watch_access(
            state.bus,
            state.sessionmaker,
            info.context.require_user(),
            personal_token=info.context.personal_token,
            check=account_only,
            lost_message="",
        ) as watch:
            user = await info.context.require_current_user()
            try:
                async for page in watch.guard(_visible_models(state, user.id, first)):
                    yield page
            except AccessLost as lost:
                info.context.user = None
                info.context.auth_error = lost.message
                raise lost.as_graphql_error() from None
