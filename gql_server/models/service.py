"""Models: create, update, delete, grants, connection test. Administrators only (the
resolvers check the role); services never commit.

API keys are write-only: encrypted with the app's MultiFernet before they touch a row,
never logged, never put in an audit entry (only "set"/"cleared" is recorded).

A key is bound to the origin (scheme://host:port) of the base URL it was entered with,
stored next to it (`api_key_origin`). Changing the provider's origin without entering
the key again is refused on `apiKey`: otherwise pointing the model at another host would
send that host the stored key, and so read a write-only secret. (Clearing the key
silently instead would leave the admin with a model that mysteriously fails.) A key
stored before keys were bound (`api_key_origin` NULL) counts as bound to the model's
current address. Base URLs are checked against the URL policy (gql_server.llm.url_policy)
when they change; the providers check again at every connection.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.audit import service as audit
from gql_server.db.models import ModelAccessGrant, ProviderKind, RagModel, User
from gql_server.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    text_problems,
)
from gql_server.groups import repository as groups_repository
from gql_server.llm.base import ProviderConfig
from gql_server.llm.url_policy import STRICT_POLICY, UrlPolicy
from gql_server.models import repository
from gql_server.security.encryption import ApiKeyCipher, ApiKeyDecryptionError
from gql_server.users import repository as users_repository

NAME_MAX = 120
DESCRIPTION_MAX = 5000
LLM_MODEL_NAME_MAX = 200
BASE_URL_MAX = 2000
SYSTEM_PROMPT_MAX = 20000
API_KEY_MAX = 1000
CONTEXT_WINDOW_MIN = 512
CONTEXT_WINDOW_MAX = 2_000_000
TOP_K_MIN, TOP_K_MAX = 1, 50

# The settings an admin can change; `api_key` and `clear_api_key` are handled apart.
SETTING_FIELDS = (
    "name",
    "description",
    "provider",
    "llm_model_name",
    "base_url",
    "system_prompt",
    "temperature",
    "max_output_tokens",
    "context_window_tokens",
    "top_k",
    "hybrid_search",
    "relevance_threshold",
)


NULLABLE_SETTINGS = {"llm_model_name", "base_url", "relevance_threshold", "description", "system_prompt"}


@dataclass
class ModelChanges:
    """Only the fields present are changed (an update); a create starts from the defaults."""

    values: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    clear_api_key: bool = False


def model_changes(present: dict[str, Any], api_key: str | None, clear_api_key: bool) -> ModelChanges:
    """The changes an input asks for: `present` holds only the fields the client sent
    (a None there means "clear it", allowed for NULLABLE_SETTINGS only)."""
    missing = [key for key, value in present.items() if value is None and key not in NULLABLE_SETTINGS]
    if missing:
        field_name = _camel(missing[0])
        raise InvalidInputError.of(field_name, f"{field_name} cannot be null; leave it out to keep it.")
    return ModelChanges(values=present, api_key=api_key, clear_api_key=clear_api_key)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    cleaned = dict(values)
    for key in ("name", "description", "system_prompt"):
        if isinstance(cleaned.get(key), str):
            cleaned[key] = cleaned[key].strip()
    for key in ("llm_model_name", "base_url"):
        if isinstance(cleaned.get(key), str):
            cleaned[key] = cleaned[key].strip() or None
    return cleaned


def _problems(model: RagModel, changes: ModelChanges) -> list[tuple[str, str]]:
    from gql_server.llm.registry import validate_provider_config

    values = changes.values
    problems = text_problems(
        {
            "name": (values.get("name"), NAME_MAX),
            "description": (values.get("description"), DESCRIPTION_MAX),
            "llmModelName": (values.get("llm_model_name"), LLM_MODEL_NAME_MAX),
            "baseUrl": (values.get("base_url"), BASE_URL_MAX),
            "systemPrompt": (values.get("system_prompt"), SYSTEM_PROMPT_MAX),
            "apiKey": (changes.api_key, API_KEY_MAX),
        }
    )
    if "name" in values and not values["name"]:
        problems.append(("name", "The model name must not be empty."))
    if changes.api_key is not None:
        key = changes.api_key
        if not key.strip():
            problems.append(("apiKey", "The API key is empty; use clearApiKey to remove a key."))
        elif any(character.isspace() for character in key.strip()):
            problems.append(("apiKey", "The API key must not contain spaces or line breaks."))
    if changes.api_key is not None and changes.clear_api_key:
        problems.append(("clearApiKey", "Either set a new API key or clear it, not both."))
    if not CONTEXT_WINDOW_MIN <= model.context_window_tokens <= CONTEXT_WINDOW_MAX:
        problems.append(
            (
                "contextWindowTokens",
                f"The context window must be from {CONTEXT_WINDOW_MIN} to {CONTEXT_WINDOW_MAX} tokens.",
            )
        )
    elif model.max_output_tokens >= model.context_window_tokens:
        problems.append(("maxOutputTokens", "Max output tokens must be smaller than the context window."))
    if not TOP_K_MIN <= model.top_k <= TOP_K_MAX:
        problems.append(("topK", f"Top-k must be from {TOP_K_MIN} to {TOP_K_MAX}."))
    threshold = model.relevance_threshold
    if threshold is not None and (math.isnan(threshold) or not 0.0 <= threshold <= 1.0):
        problems.append(("relevanceThreshold", "The relevance threshold must be between 0 and 1."))
    if not (isinstance(model.temperature, float | int) and math.isfinite(model.temperature)) or not (
        0.0 <= model.temperature <= 2.0
    ):
        # Checked here as well: the extractive provider skips provider validation, but the
        # column has a CHECK constraint that must never be what rejects the input.
        problems.append(("temperature", "Temperature must be between 0 and 2."))
    if model.max_output_tokens < 1:
        problems.append(("maxOutputTokens", "Max output tokens must be at least 1."))
    has_key = (changes.api_key is not None) or (
        model.api_key_encrypted is not None and not changes.clear_api_key
    )
    for message in validate_provider_config(
        model.provider,
        model.llm_model_name,
        model.base_url,
        model.temperature,
        model.max_output_tokens,
        has_api_key=has_key,
    ):
        if any(message == existing for _, existing in problems):
            continue
        problems.append((_provider_problem_field(message), message))
    return _dedupe(problems)


def _key_origin(model: RagModel) -> str | None:
    """The origin `model`'s provider calls (None for EXTRACTIVE, which calls nobody)."""
    from gql_server.llm.registry import effective_base_url
    from gql_server.llm.url_policy import url_origin

    kind = model.provider
    if kind is ProviderKind.EXTRACTIVE:
        return None
    return url_origin(effective_base_url(kind, model.base_url))


def _stored_key_origin(model: RagModel) -> str | None:
    return model.api_key_origin or _key_origin(model)


def _key_problems(model: RagModel, preview: RagModel, changes: ModelChanges) -> list[tuple[str, str]]:
    """A kept key may not follow the model to another origin."""
    if changes.api_key is not None or changes.clear_api_key or model.api_key_encrypted is None:
        return []
    new_origin = _key_origin(preview)
    if new_origin is None:  # EXTRACTIVE sends the key nowhere; it stays bound where it was
        return []
    old_origin = _stored_key_origin(model)
    if new_origin == old_origin:
        return []
    return [
        (
            "apiKey",
            "Enter the API key again when changing the provider's address: the stored key was "
            f"entered for {old_origin or 'no address'} and is never sent to {new_origin}. "
            "Or remove it with clearApiKey.",
        )
    ]


async def _address_problems(
    preview: RagModel, problems: list[tuple[str, str]], policy: UrlPolicy
) -> list[tuple[str, str]]:
    """The URL policy's verdict on the address the provider would call (resolving its name)."""
    from gql_server.llm.registry import effective_base_url
    from gql_server.llm.url_policy import url_refusal

    if any(field_name == "baseUrl" for field_name, _ in problems):
        return []  # malformed: the syntax problem is the one to fix first
    kind = preview.provider
    url = effective_base_url(kind, preview.base_url) if kind is not ProviderKind.EXTRACTIVE else None
    if url is None:
        return []
    refusal = await url_refusal(url, policy)
    return [("baseUrl", refusal)] if refusal else []


def _provider_problem_field(message: str) -> str:
    lowered = message.lower()
    if "url" in lowered:
        return "baseUrl"
    if "model name" in lowered:
        return "llmModelName"
    if "temperature" in lowered:
        return "temperature"
    if "output tokens" in lowered:
        return "maxOutputTokens"
    if "api key" in lowered:
        return "apiKey"
    return "provider"


def _dedupe(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    unique = []
    for field_name, message in problems:
        if field_name in seen and field_name in ("temperature", "maxOutputTokens"):
            continue
        seen.add(field_name)
        unique.append((field_name, message))
    return unique


def _apply(model: RagModel, changes: ModelChanges, cipher: ApiKeyCipher) -> list[str]:
    kept_key_origin = _stored_key_origin(model) if model.api_key_encrypted is not None else None
    changed = []
    for key, value in _normalise(changes.values).items():
        if key == "description" or key == "system_prompt":
            value = value if value is not None else ""
        if getattr(model, key) != value:
            setattr(model, key, value)
            changed.append(_camel(key))
    if changes.api_key is not None:
        key_text = changes.api_key.strip()
        model.api_key_encrypted = cipher.encrypt(key_text)
        model.api_key_last4 = key_text[-4:] if len(key_text) >= 8 else None
        model.api_key_origin = _key_origin(model)
        changed.append("apiKey")
    elif changes.clear_api_key and model.api_key_encrypted is not None:
        model.api_key_encrypted = None
        model.api_key_last4 = None
        model.api_key_origin = None
        changed.append("apiKey")
    elif model.api_key_encrypted is not None and model.api_key_origin is None:
        # A key stored before keys were bound: bind it to the address it was used with.
        model.api_key_origin = kept_key_origin
    return changed


async def _ensure_name_free(session: AsyncSession, name: str, except_id: uuid.UUID | None) -> None:
    if await repository.name_taken(session, name, except_id):
        raise AlreadyExistsError(f"A model named '{name}' already exists.", "name")


async def _save(session: AsyncSession, model: RagModel, except_id: uuid.UUID | None) -> None:
    with session.no_autoflush:  # the pending row must not be flushed (and collide) by the check
        await _ensure_name_free(session, model.name, except_id)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:  # a concurrent request took the name first
        raise AlreadyExistsError(f"A model named '{model.name}' already exists.", "name") from error


async def create_model(
    session: AsyncSession,
    actor: User,
    changes: ModelChanges,
    cipher: ApiKeyCipher,
    url_policy: UrlPolicy = STRICT_POLICY,
) -> RagModel:
    model = RagModel(
        id=uuid.uuid4(),
        name="",
        description="",
        provider=ProviderKind.EXTRACTIVE,
        system_prompt="",
        temperature=0.2,
        max_output_tokens=1024,
        context_window_tokens=8192,
        top_k=6,
        hybrid_search=True,
        created_by_id=actor.id,
    )
    changes.values = _normalise(changes.values)
    if "name" not in changes.values:
        raise InvalidInputError([("name", "The model name is required.")])
    # Validate the model as it would be saved, then write nothing unless it is all valid.
    preview = _preview(model, changes)
    problems = _problems(preview, changes)
    problems += await _address_problems(preview, problems, url_policy)
    if problems:
        raise InvalidInputError(problems)
    # Checked before `add`: autoflush would otherwise insert the row and find itself.
    await _ensure_name_free(session, changes.values["name"], None)
    changed = _apply(model, changes, cipher)
    # The insert trigger ATTACHes the model's chunk partition; take that DDL's lock first.
    await repository.lock_chunk_partition_ddl(session)
    session.add(model)
    await _save(session, model, model.id)
    await audit.record(
        session, actor, "model.create", "model", model.id, {"name": model.name, "fields": changed}
    )
    return model


def _preview(model: RagModel, changes: ModelChanges) -> RagModel:
    """A detached copy with the changes applied (no secrets involved), for validation."""
    preview = RagModel(
        **{key: getattr(model, key) for key in SETTING_FIELDS},
        api_key_encrypted=model.api_key_encrypted,
    )
    for key, value in changes.values.items():
        setattr(preview, key, value)
    return preview


async def update_model(
    session: AsyncSession,
    actor: User,
    model_id: uuid.UUID,
    changes: ModelChanges,
    cipher: ApiKeyCipher,
    url_policy: UrlPolicy = STRICT_POLICY,
) -> RagModel:
    model = await repository.get_model_for_update(session, model_id)
    if model is None:
        raise NotFoundError.of("The model")
    changes.values = _normalise(changes.values)
    preview = _preview(model, changes)
    problems = _problems(preview, changes) + _key_problems(model, preview, changes)
    if _key_origin(preview) != _key_origin(model):
        # Only a changed address is judged again: a model saved while private addresses
        # were allowed can still be renamed after they no longer are (it fails when used).
        problems += await _address_problems(preview, problems, url_policy)
    if problems:
        raise InvalidInputError(_dedupe(problems))
    changed = _apply(model, changes, cipher)
    await _save(session, model, model.id)
    if changed:
        await audit.record(session, actor, "model.update", "model", model.id, {"fields": changed})
    return model


async def delete_model(session: AsyncSession, actor: User, model_id: uuid.UUID) -> tuple[int, int]:
    """Delete the model with its documents, chunks and chats; queue its files for the
    sweeper in the same transaction. Returns (documents deleted, files queued)."""
    model = await repository.get_model_for_update(session, model_id)
    if model is None:
        raise NotFoundError.of("The model")
    documents = await repository.count_documents(session, model.id)
    files = await repository.queue_document_files_for_deletion(session, model.id)
    await audit.record(
        session,
        actor,
        "model.delete",
        "model",
        model.id,
        {"name": model.name, "documents": documents, "files": files},
    )
    session.expunge(model)
    await repository.delete_model(session, model.id)
    return documents, files


async def _grantee(
    session: AsyncSession, model_id: uuid.UUID, group_id: uuid.UUID | None, user_id: uuid.UUID | None
) -> RagModel:
    if (group_id is None) == (user_id is None):
        raise InvalidInputError.of("groupId", "Give exactly one of groupId and userId.")
    model = await repository.get_model_for_update(session, model_id)
    if model is None:
        raise NotFoundError.of("The model")
    if group_id is not None and await groups_repository.get_group(session, group_id) is None:
        raise NotFoundError.of("The group")
    if user_id is not None and await users_repository.get_user_for_update(session, user_id) is None:
        raise NotFoundError.of("The user")
    return model


async def grant_access(
    session: AsyncSession,
    actor: User,
    model_id: uuid.UUID,
    *,
    group_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
) -> ModelAccessGrant:
    """Idempotent: granting twice returns the existing grant."""
    model = await _grantee(session, model_id, group_id, user_id)
    existing = await repository.find_grant(session, model.id, group_id=group_id, user_id=user_id)
    if existing is not None:
        return existing
    grant = ModelAccessGrant(model_id=model.id, group_id=group_id, user_id=user_id, granted_by_id=actor.id)
    session.add(grant)
    await session.flush()
    await audit.record(
        session,
        actor,
        "model.grant",
        "model",
        model.id,
        {"groupId": str(group_id) if group_id else None, "userId": str(user_id) if user_id else None},
    )
    return grant


async def revoke_access(
    session: AsyncSession,
    actor: User,
    model_id: uuid.UUID,
    *,
    group_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
) -> uuid.UUID:
    model = await _grantee(session, model_id, group_id, user_id)
    existing = await repository.find_grant(session, model.id, group_id=group_id, user_id=user_id)
    if existing is None:
        raise NotFoundError("There is no such grant on this model.")
    await session.delete(existing)
    await session.flush()
    await audit.record(
        session,
        actor,
        "model.revoke",
        "model",
        model.id,
        {"groupId": str(group_id) if group_id else None, "userId": str(user_id) if user_id else None},
    )
    return existing.id


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str
    latency_ms: float | None
    reachable: bool = False
    http_status: int | None = None
    model_found: bool | None = None


def provider_config(
    model: RagModel,
    api_key: str | None,
    *,
    url_policy: UrlPolicy,
    request_timeout_s: float,
    connect_timeout_s: float,
) -> ProviderConfig:
    """What a provider needs to talk to the model's LLM, its key already decrypted: the one
    mapping from a model row, used by answers (chat/generation.py) and connection tests alike."""
    return ProviderConfig(
        kind=model.provider,
        model_name=model.llm_model_name,
        base_url=model.base_url,
        api_key=api_key,
        temperature=model.temperature,
        max_output_tokens=model.max_output_tokens,
        request_timeout_s=request_timeout_s,
        connect_timeout_s=connect_timeout_s,
        context_window_tokens=model.context_window_tokens,
        url_policy=url_policy,
        api_key_origin=model.api_key_origin,
    )


async def test_connection(
    model: RagModel, cipher: ApiKeyCipher, url_policy: UrlPolicy = STRICT_POLICY
) -> ConnectionResult:
    """Build the model's provider with its decrypted key and ask it to check the connection.

    The result is ragql's own account (reachable, HTTP status, model found, latency):
    nothing the server answered is repeated, since the URL may point anywhere.
    """
    from gql_server.llm.registry import build_provider

    try:
        api_key = cipher.decrypt(model.api_key_encrypted) if model.api_key_encrypted else None
    except ApiKeyDecryptionError as error:
        return ConnectionResult(ok=False, message=str(error), latency_ms=None)
    provider = build_provider(
        provider_config(model, api_key, url_policy=url_policy, request_timeout_s=20, connect_timeout_s=10)
    )
    started = time.perf_counter()
    try:
        check = await provider.check_connection()
    finally:
        await provider.aclose()
    latency = check.latency_ms if check.latency_ms is not None else (time.perf_counter() - started) * 1000
    return ConnectionResult(
        ok=check.ok,
        message=check.message,
        latency_ms=round(latency, 1),
        reachable=check.reachable,
        http_status=check.status_code,
        model_found=check.model_found,
    )
