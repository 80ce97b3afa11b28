"""Plain async factory functions that write rows straight into the test database.

Use them to arrange a test's world; act and assert through the real API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_server.auth.passwords import hash_password
from gql_server.auth.tokens import AccessTokenCodec
from gql_server.db.base import utcnow
from gql_server.db.models import (
    AccessGroup,
    ChatMessage,
    ChatSession,
    GroupMembership,
    MessageRole,
    MessageStatus,
    ModelAccessGrant,
    ProviderKind,
    RagModel,
    Role,
    User,
)
from tests.graphql_client import GraphQLClient

DEFAULT_PASSWORD = "factory-password-1"
# Hashing with Argon2 costs ~100 ms; factories reuse one hash for the default password,
# computed once at import time — before any event loop runs, so it never stalls a server.
_DEFAULT_HASH = hash_password(DEFAULT_PASSWORD)


@dataclass
class Actor:
    user: User
    client: GraphQLClient


async def create_user(
    sessionmaker: async_sessionmaker[AsyncSession],
    email: str | None = None,
    role: Role = Role.USER,
    *,
    is_active: bool = True,
    display_name: str | None = None,
) -> User:
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    async with sessionmaker.begin() as session:
        user = User(
            email=email.lower(),
            display_name=display_name or email.split("@")[0],
            password_hash=_DEFAULT_HASH,
            role=role,
            is_active=is_active,
        )
        session.add(user)
    return user


def client_for(client: GraphQLClient, codec: AccessTokenCodec, user: User) -> GraphQLClient:
    """An API client authenticated as `user` (a real signed access token, no log-in round trip)."""
    return client.with_token(codec.issue(user.id, user.token_version).token)


async def create_model(
    sessionmaker: async_sessionmaker[AsyncSession],
    name: str | None = None,
    *,
    provider: ProviderKind = ProviderKind.EXTRACTIVE,
    llm_model_name: str | None = None,
    base_url: str | None = None,
    api_key_encrypted: bytes | None = None,
    api_key_last4: str | None = None,
    top_k: int = 6,
    hybrid_search: bool = True,
) -> RagModel:
    async with sessionmaker.begin() as session:
        model = RagModel(
            name=name or f"model-{uuid.uuid4().hex[:8]}",
            provider=provider,
            llm_model_name=llm_model_name,
            base_url=base_url,
            api_key_encrypted=api_key_encrypted,
            api_key_last4=api_key_last4,
            top_k=top_k,
            hybrid_search=hybrid_search,
        )
        session.add(model)
    return model


async def create_group(
    sessionmaker: async_sessionmaker[AsyncSession], name: str | None = None, members: list[User] | None = None
) -> AccessGroup:
    async with sessionmaker.begin() as session:
        group = AccessGroup(name=name or f"group-{uuid.uuid4().hex[:8]}")
        session.add(group)
        await session.flush()
        for member in members or []:
            session.add(GroupMembership(group_id=group.id, user_id=member.id))
    return group


async def grant_model(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: RagModel,
    *,
    user: User | None = None,
    group: AccessGroup | None = None,
) -> ModelAccessGrant:
    async with sessionmaker.begin() as session:
        grant = ModelAccessGrant(
            model_id=model.id,
            user_id=user.id if user else None,
            group_id=group.id if group else None,
        )
        session.add(grant)
    return grant


async def create_chat(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    model: RagModel,
    *,
    title: str,
    active: bool,
    question: str,
    answer: str,
    answer_status: MessageStatus,
) -> tuple[ChatSession, ChatMessage]:
    """A chat of `user` on `model` (ended unless `active`) holding one question and the answer
    to it: finished (COMPLETE) or still being generated (PENDING)."""
    now = utcnow()
    async with sessionmaker.begin() as session:
        chat = ChatSession(
            user_id=user.id,
            model_id=model.id,
            title=title,
            is_active=active,
            ended_at=None if active else now,
        )
        session.add(chat)
        await session.flush()
        session.add(
            ChatMessage(
                session_id=chat.id,
                user_id=user.id,
                role=MessageRole.USER,
                content=question,
                status=MessageStatus.COMPLETE,
                sources=[],
                created_at=now,
            )
        )
        reply = ChatMessage(
            session_id=chat.id,
            user_id=user.id,
            role=MessageRole.ASSISTANT,
            content=answer,
            status=answer_status,
            sources=[],
            created_at=now + timedelta(milliseconds=1),
            completed_at=now if answer_status == MessageStatus.COMPLETE else None,
        )
        session.add(reply)
    return chat, reply
