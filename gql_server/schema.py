"""One schema merged from the domain packages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gql_server.access_tokens.resolvers import AccessTokensMutation, AccessTokensQuery
from gql_server.audit.resolvers import AuditQuery
from gql_server.auth.resolvers import AuthMutation, AuthQuery, AuthSubscription
from gql_server.chat.resolvers import ChatMutation, ChatQuery, ChatSubscription
from gql_server.context import Context
from gql_server.documents.resolvers import DocumentMutation, DocumentQuery, DocumentSubscription
from gql_server.groups.resolvers import GroupsMutation, GroupsQuery
from gql_server.kit.input_guard import guard_string_arguments
from gql_server.kit.mapper import mapper
from gql_server.masking import MaskUnexpectedErrors, log_graphql_errors
from gql_server.models.resolvers import ModelsMutation, ModelsQuery, ModelsSubscription
from gql_server.oidc.resolvers import OidcMutation, OidcQuery
from gql_server.quotas.resolvers import QuotasMutation, QuotasQuery
from gql_server.search.resolvers import RetrievalQuery
from gql_server.settings import Settings
from gql_server.users.resolvers import UsersMutation, UsersQuery

# Each domain contributes a Query/Mutation/Subscription type; add new ones here.
QUERY_TYPES: tuple[type, ...] = (
    AuthQuery,
    OidcQuery,
    UsersQuery,
    GroupsQuery,
    ModelsQuery,
    AuditQuery,
    ChatQuery,
    DocumentQuery,
    RetrievalQuery,
    AccessTokensQuery,
    QuotasQuery,
)
MUTATION_TYPES: tuple[type, ...] = (
    AuthMutation,
    OidcMutation,
    UsersMutation,
    GroupsMutation,
    ModelsMutation,
    ChatMutation,
    DocumentMutation,
    AccessTokensMutation,
    QuotasMutation,
)
SUBSCRIPTION_TYPES: tuple[type, ...] = (
    AuthSubscription,
    ChatSubscription,
    DocumentSubscription,
    ModelsSubscription,
)


class RefreshSocketAccount(SchemaExtension):
    """Every operation on an open WebSocket runs as the account is now (see
    Context.refresh_socket_account); HTTP requests read the account per request already."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            await context.refresh_socket_account()
        yield


class RagqlSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Instead of strawberry's ERROR-with-traceback-and-source for every error (see masking.py).
        log_graphql_errors(errors, execution_context)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    query = merge_types("Query", QUERY_TYPES)
    mutation = merge_types("Mutation", MUTATION_TYPES)
    subscription = merge_types("Subscription", SUBSCRIPTION_TYPES)
    mapper.finalize()
    # Classes or factories, never instances: strawberry builds each extension anew for every
    # operation. A shared instance's `execution_context` is overwritten by concurrent
    # operations (the masking extension leaked driver errors that way). The parse and
    # validation caches live at module level, keyed by maxsize, so they are still shared.
    extensions: list[Any] = [
        # Clients send the same few documents over and over (every subscription event,
        # every sendMessage): parse and validate each distinct document once.
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        MaskUnexpectedErrors,
        RefreshSocketAccount,
    ]
    schema = RagqlSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        types=list(mapper.mapped_types.values()),
        config=StrawberryConfig(auto_camel_case=True),
        extensions=extensions,
    )
    # NUL and lone surrogates in any string argument are refused before a resolver runs.
    guard_string_arguments(schema._schema)
    return schema


def export_schema_sdl(settings: Settings | None = None) -> str:
    return build_schema(settings).as_str() + "\n"
