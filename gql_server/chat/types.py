"""GraphQL types of the chat domain: from rows with `from_row` (like every type), from
stream events (`gql_server/events/kinds.py`) and stored source dicts by the functions at the end."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry

from gql_server.chat.loaders import attachments_of_session
from gql_server.context import Info
from gql_server.db import models
from gql_server.documents.types import (
    Document,
    DocumentUploaded,
    DuplicateDocument,
    FileTooLarge,
    StorageFull,
    UnsupportedFileType,
)
from gql_server.errors import Error, Forbidden, InvalidInput, NotFound
from gql_server.events.kinds import AnswerDone, AnswerEvent, AnswerFailed, AnswerSources, AnswerToken
from gql_server.kit.page import Page
from gql_server.quotas.types import QuotaExceeded
from gql_server.search.types import SourceLocation

MessageRole = strawberry.enum(models.MessageRole, name="MessageRole", description="Who wrote a message.")
MessageStatus = strawberry.enum(
    models.MessageStatus,
    name="MessageStatus",
    description="PENDING and STREAMING while an answer is generated; then COMPLETE, STOPPED or FAILED.",
)


@strawberry.enum(
    description="How well the retrieved passages support an answer. STRONG: they hold the question's "
    "distinctive words (or a phrase it quotes). WEAK: passages were found but few of those words occur "
    'in them; the built-in answerer then replies "The documents don\'t answer this question." and an LLM '
    "is told the passages may not answer it. NONE: no passage was found."
)
class Evidence(enum.Enum):
    STRONG = "STRONG"
    WEAK = "WEAK"
    NONE = "NONE"


@strawberry.type(description="One row of a CSV source.")
class SourceTableRow:
    data_row: int | None = strawberry.field(
        description="The data row number: the N-th row after the header row (1-based, blank lines not "
        "counted), not the file's line number; null when it cannot be told (a row spread over passages)."
    )
    cells: list[str] = strawberry.field(description="The row's values, in the order of `columns`.")


@strawberry.type(description="A CSV source's rows as a table.")
class SourceTable:
    columns: list[str]
    rows: list[SourceTableRow]


@strawberry.enum(description="Thumbs up, thumbs down, or no feedback.")
class FeedbackValue(enum.Enum):
    UP = "UP"
    DOWN = "DOWN"
    NONE = "NONE"


@strawberry.type(description="A chat with one model. Only its owner can see it.")
class ChatSession:
    id: uuid.UUID
    model_id: uuid.UUID
    title: str
    is_active: bool = strawberry.field(
        description="False once the user started (or continued) another session with the same model; "
        "resumeChatSession or sending a message makes it active again."
    )
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None

    @strawberry.field(
        description="The files attached to this chat (attachFile), oldest first, with their ingestion "
        "state; they are searched for this chat's questions only."
    )
    async def attachments(self, info: Info) -> list[Document]:
        rows = await info.context.loader("chat.attachments", attachments_of_session).load(self.id)
        return [Document.from_row(row) for row in rows]

    @classmethod
    def from_row(cls, row: models.ChatSession) -> ChatSession:
        return cls(
            id=row.id,
            model_id=row.model_id,
            title=row.title,
            is_active=row.is_active,
            created_at=row.created_at,
            updated_at=row.updated_at,
            ended_at=row.ended_at,
        )


@strawberry.type(description="A passage an answer was based on; `number` is its [n] marker in the text.")
class MessageSource:
    number: int
    document_id: uuid.UUID
    document_title: str = strawberry.field(
        description="The document's title: the PDF's own title when it names the document, else the file "
        "name without extension, separators turned into spaces (unless the uploader chose one)."
    )
    page_start: int | None
    page_end: int | None
    row_start: int | None = strawberry.field(
        description="CSV sources: the first data row (the N-th row after the header, 1-based), not a line number."
    )
    row_end: int | None = strawberry.field(description="CSV sources: the last data row (see rowStart).")
    location_label: str = strawberry.field(
        description='Where the passage is, in words: "p. 4", "pp. 4–5", "p. 3 (OCR)", "slide 7", '
        '"Sheet \'Q2\', rows 12–30", "§ Benefits › Leave", "data row 7" or "data rows 7–9" '
        "(the same as location.label)."
    )
    snippet: str
    score: float
    cited: bool = strawberry.field(
        description="Whether the final answer cites this source. Every source was given to the model, "
        "cited or not."
    )
    preview: str = strawberry.field(description="One line of the passage, to tell sources apart.")
    table: SourceTable | None = strawberry.field(
        description="A CSV source's rows (at most 50) as a table; null for other documents."
    )
    location: SourceLocation = strawberry.field(
        description="Where the passage is, typed by the document's kind (slide, sheet and rows, heading "
        "path, page, OCR), with a label in words."
    )
    # "/files/documents/{id}[#page=N]" as stored with the answer, when the file was kept.
    stored_url: strawberry.Private[str | None] = None

    @strawberry.field(
        description="A short-lived link to the original file, signed for you (a #page=N anchor for "
        "PDFs), that a browser can open as it is; null when the server did not keep the file."
    )
    def url(self, info: Info) -> str | None:
        from gql_server.documents.downloads import download_url

        user = info.context.user
        if self.stored_url is None or user is None:
            return None
        _, _, anchor = self.stored_url.partition("#")
        link = download_url(info.context.state.settings.jwt_secret, self.document_id, user)
        return f"{link}#{anchor}" if anchor else link


@strawberry.type
class TokenUsage:
    prompt_tokens: int | None
    completion_tokens: int | None


@strawberry.type
class MessageTimings:
    retrieval_ms: float | None
    time_to_first_token_ms: float | None
    total_ms: float | None


@strawberry.type
class ChatMessage:
    id: uuid.UUID
    session_id: uuid.UUID
    role: MessageRole  # type: ignore[valid-type]
    content: str
    status: MessageStatus  # type: ignore[valid-type]
    sources: list[MessageSource]
    citations: list[int] = strawberry.field(description="Source numbers cited, in order of first use.")
    error: str | None
    feedback: FeedbackValue
    token_usage: TokenUsage | None
    timings: MessageTimings | None
    created_at: datetime
    completed_at: datetime | None
    truncated: bool = strawberry.field(
        description="The model stopped at its output token limit (the model's maxOutputTokens): the answer "
        "is cut off."
    )
    evidence: Evidence | None = strawberry.field(
        description="Answers: how well the passages supported them (see Evidence); null for questions and "
        "for answers stored before this was recorded."
    )

    @classmethod
    def from_row(cls, row: models.ChatMessage) -> ChatMessage:
        sources = row.sources or []
        return cls(
            id=row.id,
            session_id=row.session_id,
            role=row.role,
            content=row.content,
            status=row.status,
            sources=[source_from_dict(source) for source in sources],
            citations=citations_of(sources),
            error=row.error,
            feedback=_feedback(row.feedback),
            token_usage=usage_from_dict(row.token_usage),
            timings=timings_from_dict(row.timings),
            created_at=row.created_at,
            completed_at=row.completed_at,
            truncated=bool(row.truncated),
            evidence=_evidence(row.evidence),
        )


@strawberry.type(description="The question was stored and the answer is being generated.")
class MessageSent:
    user_message: ChatMessage | None
    assistant_message: ChatMessage
    message_id: uuid.UUID = strawberry.field(
        description="The assistant message's id: subscribe to messageStream(messageId) for the answer."
    )


@strawberry.type(description="An answer of yours is still being generated; wait for it or stop it first.")
class GenerationInProgress(Error):
    message: str
    message_id: uuid.UUID


@strawberry.type
class StopRequested:
    message_id: uuid.UUID
    already_finished: bool = strawberry.field(description="True when the answer had already finished.")


@strawberry.type
class ChatSessionDeleted:
    id: uuid.UUID


# --- stream events -------------------------------------------------------------------


@strawberry.interface(description="One event of an answer's stream, numbered from 1 in order.")
class MessageEvent:
    message_id: uuid.UUID
    seq: int


@strawberry.type(description="The sources the answer is based on (always the first event).")
class SourcesEvent(MessageEvent):
    sources: list[MessageSource]


@strawberry.type(description="The next piece of the answer's text.")
class TokenEvent(MessageEvent):
    delta: str


@strawberry.type(description="The answer finished (COMPLETE) or was stopped (STOPPED); the stream ends.")
class DoneEvent(MessageEvent):
    status: MessageStatus  # type: ignore[valid-type]
    text: str = strawberry.field(description="The final text: only [n] markers that map to a source remain.")
    citations: list[int]
    usage: TokenUsage | None
    timings: MessageTimings | None
    truncated: bool = strawberry.field(description="The model stopped at its output token limit.")
    evidence: Evidence | None = strawberry.field(description="How well the passages supported the answer.")


@strawberry.type(description="The answer failed; `text` keeps what was generated before it did.")
class ErrorEvent(MessageEvent):
    status: MessageStatus  # type: ignore[valid-type]
    message: str
    text: str


ChatMessageResult = Annotated[ChatMessage | NotFound, strawberry.union("ChatMessageResult")]
StartChatSessionResult = Annotated[
    ChatSession | NotFound | InvalidInput, strawberry.union("StartChatSessionResult")
]
ChatSessionResult = Annotated[ChatSession | NotFound, strawberry.union("ChatSessionResult")]
MessagesResult = Annotated[Page[ChatMessage] | NotFound, strawberry.union("MessagesResult")]
SendMessageResult = Annotated[
    MessageSent | NotFound | InvalidInput | GenerationInProgress | QuotaExceeded,
    strawberry.union("SendMessageResult"),
]
SetMessageFeedbackResult = Annotated[
    ChatMessage | NotFound | InvalidInput, strawberry.union("SetMessageFeedbackResult")
]
StopGenerationResult = Annotated[StopRequested | NotFound, strawberry.union("StopGenerationResult")]
ResumeChatSessionResult = Annotated[ChatSession | NotFound, strawberry.union("ResumeChatSessionResult")]
RenameChatSessionResult = Annotated[
    ChatSession | NotFound | InvalidInput, strawberry.union("RenameChatSessionResult")
]
DeleteChatSessionResult = Annotated[
    ChatSessionDeleted | NotFound, strawberry.union("DeleteChatSessionResult")
]
MessageStreamEvent = Annotated[
    SourcesEvent | TokenEvent | DoneEvent | ErrorEvent | NotFound, strawberry.union("MessageStreamEvent")
]


@strawberry.type(
    description="The file would take your chat attachments over ATTACHMENT_QUOTA_MB_PER_USER; nothing was "
    "stored. Deleting chats with attachments frees space."
)
class StorageQuotaExceeded(Error):
    limit_bytes: float
    used_bytes: float = strawberry.field(description="What your attachments use now, before this file.")


AttachFileResult = Annotated[
    DocumentUploaded
    | NotFound
    | Forbidden
    | DuplicateDocument
    | UnsupportedFileType
    | FileTooLarge
    | InvalidInput
    | StorageQuotaExceeded
    | StorageFull,
    strawberry.union("AttachFileResult"),
]


# --- mapping -------------------------------------------------------------------------


def source_from_dict(source: dict[str, Any]) -> MessageSource:
    return MessageSource(
        number=int(source["number"]),
        document_id=uuid.UUID(str(source["document_id"])),
        document_title=str(source.get("document_title") or ""),
        page_start=source.get("page_start"),
        page_end=source.get("page_end"),
        row_start=source.get("row_start"),
        row_end=source.get("row_end"),
        location_label=str(source.get("location_label") or ""),
        snippet=str(source.get("snippet") or ""),
        score=float(source.get("score") or 0.0),
        cited=source.get("cited_order") is not None,
        preview=str(source.get("preview") or _one_line(str(source.get("snippet") or ""))),
        table=_table_from_dict(source.get("table")),
        location=_location_from_dict(source),
        stored_url=source.get("url"),
    )


def _location_from_dict(source: dict[str, Any]) -> SourceLocation:
    """The stored source's location; sources stored before locations were kept get one from
    their page and row numbers."""
    from gql_server.rag.citations import source_location

    where = source.get("location")
    if not isinstance(where, dict):
        where = source_location(
            None,
            source.get("page_start"),
            source.get("page_end"),
            source.get("row_start"),
            source.get("row_end"),
        )
    return SourceLocation.from_dict(where)


def _one_line(text: str) -> str:
    from gql_server.rag.citations import preview

    return preview(text)


def _table_from_dict(table: Any) -> SourceTable | None:
    if not isinstance(table, dict):
        return None
    return SourceTable(
        columns=[str(column) for column in table.get("columns") or []],
        rows=[
            SourceTableRow(data_row=row.get("data_row"), cells=[str(cell) for cell in row.get("cells") or []])
            for row in table.get("rows") or []
            if isinstance(row, dict)
        ],
    )


def _evidence(value: Any) -> Evidence | None:
    try:
        return Evidence(value) if value else None
    except ValueError:
        return None


def citations_of(sources: list[dict[str, Any]]) -> list[int]:
    cited = [source for source in sources if source.get("cited_order") is not None]
    return [int(source["number"]) for source in sorted(cited, key=lambda source: source["cited_order"])]


def usage_from_dict(usage: dict[str, Any] | None) -> TokenUsage | None:
    if not usage:
        return None
    return TokenUsage(
        prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens")
    )


def timings_from_dict(timings: dict[str, Any] | None) -> MessageTimings | None:
    if not timings:
        return None
    return MessageTimings(
        retrieval_ms=timings.get("retrieval_ms"),
        time_to_first_token_ms=timings.get("time_to_first_token_ms"),
        total_ms=timings.get("total_ms"),
    )


def _feedback(value: int | None) -> FeedbackValue:
    if value == 1:
        return FeedbackValue.UP
    if value == -1:
        return FeedbackValue.DOWN
    return FeedbackValue.NONE


def stream_event_of(
    message_id: uuid.UUID, event: AnswerEvent
) -> SourcesEvent | TokenEvent | DoneEvent | ErrorEvent:
    match event:
        case AnswerToken():
            return TokenEvent(message_id=message_id, seq=event.seq, delta=event.delta)
        case AnswerSources():
            return SourcesEvent(
                message_id=message_id,
                seq=event.seq,
                sources=[source_from_dict(source) for source in event.sources],
            )
        case AnswerDone():
            return DoneEvent(
                message_id=message_id,
                seq=event.seq,
                status=event.status,
                text=event.text,
                citations=list(event.citations),
                usage=usage_from_dict(event.usage),
                timings=timings_from_dict(event.timings),
                truncated=event.truncated,
                evidence=_evidence(event.evidence),
            )
        case AnswerFailed():
            return ErrorEvent(
                message_id=message_id,
                seq=event.seq,
                status=event.status,
                message=event.message,
                text=event.text,
            )
