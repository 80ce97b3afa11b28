"""GraphQL types of personal access tokens. The secret appears once, in AccessTokenCreated."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from gql_server.access_tokens.service import scopes_of
from gql_server.db import models

AccessTokenScope = strawberry.enum(
    models.AccessTokenScope,
    name="AccessTokenScope",
    description="What a personal access token may reach. CHAT: models, search, chats and messages, "
    "reading documents (and the OpenAI-compatible API under /v1). ADMIN: administrative fields; "
    "only administrators can create tokens with it.",
)


@strawberry.enum(description="Whether a token works now.")
class AccessTokenStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@strawberry.type(description="A personal access token, without its secret (shown once, when created).")
class AccessToken:
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str = strawberry.field(description="The start of the secret (`ragql_pat_` and 6 characters).")
    scopes: list[AccessTokenScope]  # type: ignore[valid-type]
    created_at: datetime
    expires_at: datetime | None = strawberry.field(description="null: the token never expires.")
    last_used_at: datetime | None = strawberry.field(description="To the minute; null: never used.")
    revoked_at: datetime | None
    status: AccessTokenStatus

    @classmethod
    def from_row(cls, row: models.PersonalAccessToken, now: datetime) -> AccessToken:
        if row.revoked_at is not None:
            status = AccessTokenStatus.REVOKED
        elif row.expires_at is not None and row.expires_at <= now:
            status = AccessTokenStatus.EXPIRED
        else:
            status = AccessTokenStatus.ACTIVE
        return cls(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            prefix=row.prefix,
            scopes=scopes_of(row),
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            status=status,
        )


@strawberry.type(description="The new token and its secret. The secret is shown this once and never again.")
class AccessTokenCreated:
    token: AccessToken
    secret: str = strawberry.field(description="Send it as `Authorization: Bearer <secret>`.")
