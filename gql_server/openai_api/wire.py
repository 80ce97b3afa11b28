"""OpenAI's chat-completion shapes, plus ragql's `ragql_*` fields (documented in the README):

- `ragql_sources`: the passages the answer was given, each with its `number` (the `[n]` the
  answer cites), document, location, snippet, score, a signed download `url` (or null) and
  `cited` (null while streaming's first chunk, then true/false);
- `ragql_citations`: the source numbers the answer cites, in order of first citation;
- `ragql_chat_session_id` / `ragql_message_id`: where the exchange was stored (null with
  `"store": false`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from gql_server.db.models import MessageStatus, RagModel

# Turns a stored source's `/files/documents/<id>` link into one the caller can open.
LinkSigner = Callable[[uuid.UUID], str]


def model_object(model: RagModel) -> dict[str, Any]:
    return {
        "id": str(model.id),
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": "ragql",
        "name": model.name,
        "description": model.description,
    }


def public_source(source: dict[str, Any], sign: LinkSigner, *, final: bool) -> dict[str, Any]:
    url = source.get("url")
    if url:
        _, _, anchor = str(url).partition("#")
        url = sign(uuid.UUID(str(source["document_id"]))) + (f"#{anchor}" if anchor else "")
    return {
        "number": source["number"],
        "document_id": source["document_id"],
        "document_title": source.get("document_title"),
        "location_label": source.get("location_label"),
        "page_start": source.get("page_start"),
        "page_end": source.get("page_end"),
        "row_start": source.get("row_start"),
        "row_end": source.get("row_end"),
        "snippet": source.get("snippet"),
        "score": source.get("score"),
        "url": url,
        "cited": (source.get("cited_order") is not None) if final else None,
    }


def usage_object(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's usage from the stored counts; null when the provider reported none."""
    if not usage:
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    total = prompt + completion if isinstance(prompt, int) and isinstance(completion, int) else None
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def finish_reason(status: MessageStatus, truncated: bool) -> str:
    if truncated:
        return "length"
    return "stop"


def completion_id(message_id: uuid.UUID) -> str:
    return f"chatcmpl-{message_id.hex}"


def ragql_fields(chat_session_id: uuid.UUID | None, message_id: uuid.UUID, stored: bool) -> dict[str, Any]:
    return {
        "ragql_chat_session_id": str(chat_session_id) if chat_session_id else None,
        "ragql_message_id": str(message_id) if stored else None,
    }


def completion(
    *,
    message_id: uuid.UUID,
    created: int,
    model: str,
    text: str,
    reason: str,
    usage: dict[str, Any] | None,
    sources: list[dict[str, Any]],
    citations: list[int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": completion_id(message_id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": reason,
            }
        ],
        "usage": usage,
        "ragql_sources": sources,
        "ragql_citations": citations,
        **extra,
    }


def chunk(
    *,
    message_id: uuid.UUID,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    reason: str | None = None,
    usage: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]
    )
    body: dict[str, Any] = {
        "id": completion_id(message_id),
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage is not None or delta is None:
        body["usage"] = usage
    body.update(extra)
    return body


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"data: {payload}\n\n".encode()
