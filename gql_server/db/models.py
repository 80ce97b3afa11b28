"""The whole relational data model of ragql.

No `relationship()` is declared: rows refer to each other by foreign-key columns only,
so no attribute access can issue a hidden query. Related rows are read explicitly by the
repositories, and the GraphQL layer batches them per request with DataLoaders
(`gql_server/*/loaders.py`, one statement per batch), which is how N+1 queries are avoided.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from gql_server.db.base import Base, TimestampMixin, new_id, utcnow

EMBEDDING_DIMENSIONS = 384


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as VARCHAR: adding a value later needs no ALTER TYPE migration.
    return Enum(cls, name=name, native_enum=False, length=32, validate_strings=True)


class Role(enum.Enum):
    SUPERADMIN = "SUPERADMIN"
    ADMIN = "ADMIN"
    USER = "USER"


class ProviderKind(enum.Enum):
    EXTRACTIVE = "EXTRACTIVE"
    OLLAMA = "OLLAMA"
    OPENAI_COMPATIBLE = "OPENAI_COMPATIBLE"
    ANTHROPIC = "ANTHROPIC"


class DocumentKind(enum.Enum):
    """What an upload was sniffed as (workers/pipeline/sniff.py); the one enum of kinds,
    used by the API, the database (a VARCHAR: new kinds need no ALTER TYPE) and the pipeline."""

    PDF = "PDF"
    CSV = "CSV"
    TEXT = "TEXT"  # plain text and Markdown
    DOCX = "DOCX"  # Word, .docx/.docm
    PPTX = "PPTX"  # PowerPoint, .pptx/.pptm
    XLSX = "XLSX"  # Excel, .xlsx/.xlsm
    HTML = "HTML"
    IMAGE = "IMAGE"  # PNG, JPEG, TIFF (multi-page): OCR


class DocumentStatus(enum.Enum):
    QUEUED = "QUEUED"
    PARSING = "PARSING"
    CHUNKING = "CHUNKING"
    EMBEDDING = "EMBEDDING"
    STORING = "STORING"
    READY = "READY"
    FAILED = "FAILED"

    @property
    def is_working(self) -> bool:
        return self not in (DocumentStatus.READY, DocumentStatus.FAILED)


class MessageRole(enum.Enum):
    USER = "USER"
    ASSISTANT = "ASSISTANT"


class MessageStatus(enum.Enum):
    PENDING = "PENDING"
    STREAMING = "STREAMING"
    COMPLETE = "COMPLETE"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        # Exactly one superadmin can exist: a partial unique index on the constant role.
        Index(
            "uq_users_single_superadmin", "role", unique=True, postgresql_where=text("role = 'SUPERADMIN'")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    display_name: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), nullable=False, default=Role.USER)
    is_active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=text("true")
    )
    # Bumped on password change / deactivation: access tokens carry it, so old ones die at once.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessGroup(TimestampMixin, Base):
    __tablename__ = "access_groups"
    __table_args__ = (
        Index("uq_access_groups_name_lower", func.lower(text("name")), unique=True),
        # One local group per IdP group: the claim's names are matched exactly.
        Index(
            "uq_access_groups_external_name",
            "external_name",
            unique=True,
            postgresql_where=text("external_name IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    # The identity provider's group this group mirrors (OIDC group sync): at each OIDC log-in
    # a user's membership is set from the groups claim. NULL: memberships are managed by hand.
    external_name: Mapped[str | None] = mapped_column(String(200))
    # When an OIDC log-in last set a membership of this group from the groups claim.
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserIdentity(Base):
    """An OIDC identity (issuer, subject) linked to a ragql account: OIDC log-ins find the
    account by it, never by email alone."""

    __tablename__ = "user_identities"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_user_identities_issuer_subject"),
        UniqueConstraint("user_id", "issuer", name="uq_user_identities_user_issuer"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    issuer: Mapped[str] = mapped_column(String(500), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginCode(Base):
    """The one-time code an OIDC callback hands the SPA in the URL fragment, exchanged once
    (exchangeLoginCode) for a session. Only its SHA-256 is stored; it lives about a minute."""

    __tablename__ = "login_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class GroupMembership(Base):
    __tablename__ = "group_memberships"

    group_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("access_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )


class RagModel(TimestampMixin, Base):
    """A "model": a collection of documents plus the LLM configuration that answers over them."""

    __tablename__ = "models"
    __table_args__ = (
        Index("uq_models_name_lower", func.lower(text("name")), unique=True),
        CheckConstraint("temperature >= 0 AND temperature <= 2", name="temperature_range"),
        CheckConstraint("top_k >= 1 AND top_k <= 50", name="top_k_range"),
        CheckConstraint("max_output_tokens >= 1", name="max_output_tokens_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    provider: Mapped[ProviderKind] = mapped_column(
        _enum(ProviderKind, "provider_kind"), nullable=False, default=ProviderKind.EXTRACTIVE
    )
    llm_model_name: Mapped[str | None] = mapped_column(String(200))
    base_url: Mapped[str | None] = mapped_column(String(2000))
    # Fernet token (MultiFernet-encrypted); never returned by the API, never logged.
    api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    api_key_last4: Mapped[str | None] = mapped_column(String(4))
    # scheme://host:port the key was entered for; the key is never sent anywhere else
    # (NULL: stored before keys were bound, so bound to the model's current address).
    api_key_origin: Mapped[str | None] = mapped_column(String(300))
    system_prompt: Mapped[str] = mapped_column(Text, nullable=False, default="")
    temperature: Mapped[float] = mapped_column(Float, nullable=False, default=0.2)
    max_output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=1024)
    context_window_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=8192)
    top_k: Mapped[int] = mapped_column(Integer, nullable=False, default=6)
    hybrid_search: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    relevance_threshold: Mapped[float | None] = mapped_column(Float)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )


class ModelAccessGrant(Base):
    """Access to a model, granted to exactly one of: an access group, a single user."""

    __tablename__ = "model_access_grants"
    __table_args__ = (
        CheckConstraint("(group_id IS NULL) <> (user_id IS NULL)", name="exactly_one_grantee"),
        UniqueConstraint("model_id", "group_id", name="uq_model_access_grants_model_group"),
        UniqueConstraint("model_id", "user_id", name="uq_model_access_grants_model_user"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    model_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("models.id", ondelete="CASCADE"), nullable=False
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("access_groups.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    granted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )


class ChatSession(TimestampMixin, Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        # At most one active session per (user, model); ended ones stay as history.
        Index(
            "uq_chat_sessions_one_active",
            "user_id",
            "model_id",
            unique=True,
            postgresql_where=text("is_active"),
        ),
        Index("ix_chat_sessions_user_updated", "user_id", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    model_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False, default="New chat")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Document(TimestampMixin, Base):
    __tablename__ = "documents"
    __table_args__ = (
        # The same bytes twice in one model (or one chat session) is refused.
        Index(
            "uq_documents_model_sha256",
            "model_id",
            "sha256",
            unique=True,
            postgresql_where=text("session_id IS NULL"),
        ),
        Index(
            "uq_documents_session_sha256",
            "session_id",
            "sha256",
            unique=True,
            postgresql_where=text("session_id IS NOT NULL"),
        ),
        Index("ix_documents_status", "status"),
        # Retrieval's anti-join: the (few) documents whose chunks must not be retrieved.
        Index("ix_documents_not_ready", "id", postgresql_where=text("status <> 'READY'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    model_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # Set for files attached inside a chat: visible only to that session.
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500), nullable=False)
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    kind: Mapped[DocumentKind] = mapped_column(_enum(DocumentKind, "document_kind"), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[DocumentStatus] = mapped_column(
        _enum(DocumentStatus, "document_status"), nullable=False, default=DocumentStatus.QUEUED
    )
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    page_count: Mapped[int | None] = mapped_column(Integer)
    row_count: Mapped[int | None] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    storage_path: Mapped[str | None] = mapped_column(String(1000))
    file_kept: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    processing_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# What the lexical columns index: the context header, then the passage (migration 0003)
# without its page furniture when it had some (migration 0007).
_INDEXED_TEXT = "coalesce(context || E'\\n\\n', '') || coalesce(search_text, text)"


class DocumentChunk(Base):
    """LIST-partitioned by model_id, one partition per model (migration 0004): every
    retrieval reads one model's HNSW and GIN indexes only."""

    __tablename__ = "document_chunks"
    __table_args__ = (
        UniqueConstraint(
            "document_id", "chunk_index", "model_id", name="uq_document_chunks_document_chunk_index"
        ),
        Index(
            "ix_document_chunks_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index("ix_document_chunks_search_vector", "search_vector", postgresql_using="gin"),
        {"postgresql_partition_by": "LIST (model_id)"},
    )

    # Unique on its own (one sequence); the primary key is (id, model_id) because
    # PostgreSQL requires the partition key in it.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    # Denormalised from the document so retrieval filters without a join.
    model_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, nullable=False)
    # The passage itself: what a citation quotes.
    text: Mapped[str] = mapped_column(Text, nullable=False)
    # The document's title when the passage does not start with it: embedded and indexed
    # with the text (a "contextual chunk header"), never shown as part of the snippet.
    context: Mapped[str | None] = mapped_column(Text)
    # The passage without its page furniture (running headers, footers, repeated table
    # headings), when it had some: embedded and indexed instead of `text` (migration 0007).
    search_text: Mapped[str | None] = mapped_column(Text)
    page_start: Mapped[int | None] = mapped_column(Integer)
    page_end: Mapped[int | None] = mapped_column(Integer)
    row_start: Mapped[int | None] = mapped_column(Integer)
    row_end: Mapped[int | None] = mapped_column(Integer)
    # The typed location beyond pages and rows (heading path, slide, sheet, OCR), as
    # workers/pipeline/locations.py writes it; NULL for plain PDF/CSV/text chunks (0009).
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    token_count: Mapped[int] = mapped_column(Integer, nullable=False)
    embedding: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIMENSIONS), nullable=False)
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(f"to_tsvector('english'::regconfig, {_INDEXED_TEXT})", persisted=True)
    )
    # BM25's chunk length: indexed tokens (stop words excluded), i.e. the positions in the
    # tsvector — not length(search_vector), which counts distinct lexemes (migration 0002).
    term_count: Mapped[int] = mapped_column(
        Integer,
        Computed(f"tsvector_token_count(to_tsvector('english'::regconfig, {_INDEXED_TEXT}))", persisted=True),
    )


class Bm25CorpusStats(Base):
    """Chunk count and summed term_count of one BM25 scope: a model's shared corpus
    (scope_id = model id) or one chat session's attachments (scope_id = session id).
    Maintained by triggers on document_chunks (migration 0002); never written by code."""

    __tablename__ = "bm25_corpus_stats"
    __table_args__ = (
        Index("ix_bm25_corpus_stats_empty", "scope_id", postgresql_where=text("chunk_count <= 0")),
    )

    scope_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    chunk_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    total_terms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Bm25TermStats(Base):
    """In how many chunks of a BM25 scope each lexeme occurs (trigger-maintained, migration 0002)."""

    __tablename__ = "bm25_term_stats"
    __table_args__ = (Index("ix_bm25_term_stats_unused", "scope_id", postgresql_where=text("doc_freq <= 0")),)

    scope_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    lexeme: Mapped[str] = mapped_column(Text, primary_key=True)
    doc_freq: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_session_created", "session_id", "created_at"),
        CheckConstraint("feedback IN (-1, 1)", name="feedback_values"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[MessageRole] = mapped_column(_enum(MessageRole, "message_role"), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus, "message_status"), nullable=False, default=MessageStatus.COMPLETE
    )
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    feedback: Mapped[int | None] = mapped_column(SmallInteger)
    token_usage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The model stopped at its output token limit: the answer is cut off (migration 0008).
    truncated: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    # STRONG | WEAK | NONE: how well the passages supported an answer (llm/extractive.assess);
    # NULL for questions and for answers stored before migration 0008.
    evidence: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # All tokens descended from one log-in share a family; reuse of a rotated token revokes it.
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessTokenScope(enum.Enum):
    """What a personal access token may reach (see gql_server/permissions.py)."""

    # Models, search, chat sessions and messages, reading documents.
    CHAT = "CHAT"
    # Administrative fields; only an administrator can create a token with it.
    ADMIN = "ADMIN"


class PersonalAccessToken(Base):
    """A long-lived API key of one user (`ragql_pat_…`). Only the SHA-256 of the secret is
    stored: the secret has 256 random bits, so a fast hash is enough (as for refresh tokens)."""

    __tablename__ = "personal_access_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    # The first characters of the secret (`ragql_pat_` and 6 more), to recognise a token in lists.
    prefix: Mapped[str] = mapped_column(String(32), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # Scope names (AccessTokenScope values).
    scopes: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLogEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(80), nullable=False)
    target_type: Mapped[str] = mapped_column(String(40), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )


class PendingFileDeletion(Base):
    """Files to remove, written in the same transaction that deletes their rows.

    A sweeper removes the file and then this row, so a crash between commit and
    unlink never leaves an orphaned file behind.
    """

    __tablename__ = "pending_file_deletions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String(1000), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, nullable=False
    )


# A quota value meaning "no limit", stored explicitly so that it can override a level below
# (a user's UNLIMITED beats their groups' limits; a group's UNLIMITED is the most generous).
# NULL means "not set at this level". Never shown to clients: the API lists unlimited kinds.
QUOTA_UNLIMITED = -1


class UsageLimit(Base):
    """The quota of one user or one access group: per limit kind NULL (not set here),
    QUOTA_UNLIMITED, or a limit >= 0. How the levels combine: gql_server/quotas/service.py."""

    __tablename__ = "usage_limits"
    __table_args__ = (
        CheckConstraint("(group_id IS NULL) <> (user_id IS NULL)", name="exactly_one_subject"),
        CheckConstraint(
            "coalesce(messages_per_day, 0) >= -1 AND coalesce(tokens_per_day, 0) >= -1"
            " AND coalesce(tokens_per_month, 0) >= -1",
            name="values_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("access_groups.id", ondelete="CASCADE"), unique=True
    )
    messages_per_day: Mapped[int | None] = mapped_column(BigInteger)
    tokens_per_day: Mapped[int | None] = mapped_column(BigInteger)
    tokens_per_month: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, onupdate=utcnow, nullable=False
    )


class UsageCounter(Base):
    """What one user used on one UTC day: messages counted when sent (sendMessage,
    regenerateMessage), tokens as the provider reported them when the answer finished.
    A month's tokens are the sum of its days. Rows outlive the chats they came from."""

    __tablename__ = "usage_counters"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    messages: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default=text("0"))
    prompt_tokens: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    completion_tokens: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )


class UsageModelCounter(Base):
    """What one user used of one model on one UTC day (the usage view per model), counted
    alongside UsageCounter. Rows go with their model; UsageCounter's stay for the quota."""

    __tablename__ = "usage_model_counters"

    model_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    messages: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default=text("0"))
    prompt_tokens: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    completion_tokens: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )


__all__ = [
    "EMBEDDING_DIMENSIONS",
    "AccessGroup",
    "AccessTokenScope",
    "AuditLogEntry",
    "Bm25CorpusStats",
    "Bm25TermStats",
    "ChatMessage",
    "ChatSession",
    "Document",
    "DocumentChunk",
    "DocumentKind",
    "DocumentStatus",
    "GroupMembership",
    "LoginCode",
    "MessageRole",
    "MessageStatus",
    "ModelAccessGrant",
    "PendingFileDeletion",
    "PersonalAccessToken",
    "ProviderKind",
    "RagModel",
    "RefreshToken",
    "Role",
    "UsageCounter",
    "UsageLimit",
    "UsageModelCounter",
    "User",
    "UserIdentity",
]
