"""The events that cross the event bus: one frozen dataclass per kind, serialised only here.

Publishers construct these objects and subscribers receive them — the in-process bus hands
the very objects over. Only at the Redis boundary (`RedisEventBus`, and the chat
`RedisEventLog`, which replays a message's events from a Redis Stream) are they turned into
JSON and back, by `to_json` / `from_json`: one pydantic `TypeAdapter` over the union,
discriminated by each class's `kind`. Nothing else builds or parses event dicts.

Kinds:
- an answer's stream (`gql_server/chat/generation.py` → `messageStream`): `AnswerSources`
  (always seq 1), `AnswerToken`..., then `AnswerDone` or `AnswerFailed`; each has `seq`;
- `GenerationStop`: stop a generation running in another process (`chat.stop` channel);
- `DocumentProgressed`: one step of a document's ingestion (`gql_server/documents/progress.py`);
- `AccessChanged`: who may see what has narrowed (`gql_server/access/watch.py`).

Payloads that are stored JSON as well (an answer's sources, token usage and timings: the
chat message row's JSON columns) stay JSON objects here.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from gql_server.db.models import DocumentStatus, MessageStatus

# A JSON object as stored in a row's JSON column (a source, token usage, timings).
JsonObject = dict[str, Any]


# --- an answer's stream ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerSources:
    """The passages the answer is based on; always the first event (seq 1)."""

    seq: int
    # The stored source objects themselves (generation marks the cited ones at the end).
    sources: tuple[JsonObject, ...]
    kind: Literal["SOURCES"] = field(default="SOURCES", kw_only=True, repr=False)


@dataclass(frozen=True, slots=True)
class AnswerToken:
    seq: int
    delta: str
    kind: Literal["TOKEN"] = field(default="TOKEN", kw_only=True, repr=False)


@dataclass(frozen=True, slots=True)
class AnswerDone:
    """The answer finished (COMPLETE) or was stopped (STOPPED)."""

    seq: int
    status: MessageStatus
    text: str
    citations: tuple[int, ...] = ()
    usage: JsonObject | None = None
    timings: JsonObject | None = None
    truncated: bool = False
    evidence: str | None = None
    kind: Literal["DONE"] = field(default="DONE", kw_only=True, repr=False)


@dataclass(frozen=True, slots=True)
class AnswerFailed:
    """The answer failed; `text` keeps what was generated before it did."""

    seq: int
    message: str
    text: str = ""
    status: MessageStatus = MessageStatus.FAILED
    kind: Literal["ERROR"] = field(default="ERROR", kw_only=True, repr=False)


AnswerEvent = AnswerSources | AnswerToken | AnswerDone | AnswerFailed
ANSWER_EVENT_TYPES = (AnswerSources, AnswerToken, AnswerDone, AnswerFailed)


def is_terminal(event: AnswerEvent) -> bool:
    """DONE or ERROR: the stream of this answer ends with it."""
    return isinstance(event, AnswerDone | AnswerFailed)


@dataclass(frozen=True, slots=True)
class GenerationStop:
    """Stop this message's generation in whichever process runs it."""

    message_id: uuid.UUID
    kind: Literal["STOP"] = field(default="STOP", kw_only=True, repr=False)


# --- documents -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentProgressed:
    """One step of a document's ingestion: built from its row or the running task's tracker."""

    document_id: uuid.UUID
    model_id: uuid.UUID
    session_id: uuid.UUID | None  # a chat attachment's session: published per document only
    status: DocumentStatus
    progress: float
    pages_done: int | None
    page_count: int | None
    chunk_count: int
    elapsed_seconds: float | None
    eta_seconds: float | None
    error: str | None
    warnings: tuple[str, ...]
    attempt: int
    deleted: bool
    at: float  # time.time() when built
    kind: Literal["DOCUMENT_PROGRESS"] = field(default="DOCUMENT_PROGRESS", kw_only=True, repr=False)


# --- access ----------------------------------------------------------------------------


class AccessChangeReason(enum.StrEnum):
    GRANT_REVOKED = "GRANT_REVOKED"
    MEMBERSHIP_REMOVED = "MEMBERSHIP_REMOVED"
    GROUP_DELETED = "GROUP_DELETED"
    USER_DEACTIVATED = "USER_DEACTIVATED"
    USER_DEMOTED = "USER_DEMOTED"
    SESSIONS_REVOKED = "SESSIONS_REVOKED"  # token_version bumped (password change)
    ACCESS_TOKEN_REVOKED = "ACCESS_TOKEN_REVOKED"  # a personal access token of the user
    MODEL_DELETED = "MODEL_DELETED"
    RESYNC = "RESYNC"  # events may have been lost: everyone re-checks
    # Widening: someone may now see more. Open streams have nothing to re-check (AccessWatch
    # skips them); lists of what the caller may see (`visibleModels`) refresh.
    GRANT_ADDED = "GRANT_ADDED"
    MEMBERSHIP_ADDED = "MEMBERSHIP_ADDED"
    USER_PROMOTED = "USER_PROMOTED"
    MODEL_CREATED = "MODEL_CREATED"
    MODEL_UPDATED = "MODEL_UPDATED"  # renamed or re-described: lists show the new name


WIDENING_REASONS = frozenset(
    {
        AccessChangeReason.GRANT_ADDED,
        AccessChangeReason.MEMBERSHIP_ADDED,
        AccessChangeReason.USER_PROMOTED,
        AccessChangeReason.MODEL_CREATED,
        AccessChangeReason.MODEL_UPDATED,
    }
)


@dataclass(frozen=True, slots=True)
class AccessChanged:
    """Who may see what has changed (the change is committed). Only ids, never names.
    Most reasons narrow access (open streams re-check); WIDENING_REASONS only widen it.

    Whom it concerns: with `user_ids`, those users' subscriptions; otherwise, with
    `model_ids`, every subscription on those models; with neither, every subscription.
    """

    reason: AccessChangeReason
    user_ids: frozenset[uuid.UUID] = frozenset()
    model_ids: frozenset[uuid.UUID] = frozenset()
    group_id: uuid.UUID | None = None
    kind: Literal["ACCESS_CHANGED"] = field(default="ACCESS_CHANGED", kw_only=True, repr=False)

    @classmethod
    def of(
        cls,
        reason: AccessChangeReason,
        *,
        user_ids: Iterable[uuid.UUID | None] = (),
        model_ids: Iterable[uuid.UUID | None] = (),
        group_id: uuid.UUID | None = None,
    ) -> AccessChanged:
        return cls(
            reason,
            frozenset(user_id for user_id in user_ids if user_id is not None),
            frozenset(model_id for model_id in model_ids if model_id is not None),
            group_id,
        )

    def concerns(self, user_id: uuid.UUID, model_ids: Iterable[uuid.UUID]) -> bool:
        if self.user_ids:
            return user_id in self.user_ids
        if self.model_ids:
            return not self.model_ids.isdisjoint(model_ids)
        return True


# --- the wire --------------------------------------------------------------------------

Event = Annotated[
    AnswerSources
    | AnswerToken
    | AnswerDone
    | AnswerFailed
    | GenerationStop
    | DocumentProgressed
    | AccessChanged,
    Field(discriminator="kind"),
]

_WIRE: TypeAdapter[Event] = TypeAdapter(Event)


def to_json(event: Event) -> str:
    """The event as JSON, tagged with its `kind` (for Redis only)."""
    return _WIRE.dump_json(event).decode()


def from_json(data: str | bytes) -> Event:
    """The event `to_json` wrote; raises pydantic.ValidationError on anything else."""
    return _WIRE.validate_json(data)
