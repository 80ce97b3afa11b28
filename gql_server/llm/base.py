"""The contract every answer generator fulfils, and the values that cross it.

A provider turns a `GenerationRequest` (system prompt, budgeted chat turns, the numbered
passages) into a stream of `TokenDelta`s followed by at most one `Usage`. Everything that
can go wrong is raised as `LLMProviderError`, whose `user_message` is written for the
person who configured the model, so the chat layer can show it verbatim. Errors raised
after some tokens were yielded leave those tokens with the caller: it decides whether a
partial answer is worth keeping.
"""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

# The one enum of provider kinds, stored on a model's row and used to pick its client.
from gql_server.db.models import ProviderKind
from gql_server.llm.url_policy import STRICT_POLICY, UrlPolicy


@dataclass(frozen=True)
class ProviderConfig:
    """Everything needed to talk to one configured model.

    `api_key` arrives already decrypted; providers never log it and scrub it from any
    provider-supplied text they repeat. `request_timeout_s` bounds every wait for the
    next piece of data (the response headers, then each chunk), not the whole answer,
    so long answers from a steadily streaming server are never cut off while a server
    that stops sending is detected quickly.

    `url_policy` decides which addresses may be connected to (strict unless the caller
    passes the one built from Settings). `api_key_origin` is the scheme://host:port the
    key was entered for: a provider whose base URL has another origin does not send the
    key at all (None: the caller vouches for the pairing, as for keys stored before keys
    were bound to an origin).
    """

    kind: ProviderKind
    model_name: str | None
    base_url: str | None
    api_key: str | None
    temperature: float
    max_output_tokens: int
    request_timeout_s: float = 60
    connect_timeout_s: float = 10
    # Ollama silently truncates prompts to its own default context (a few thousand tokens)
    # unless told otherwise; when the caller knows the window it budgeted for, Ollama gets
    # it as `num_ctx`. Other providers size their context themselves and ignore this.
    context_window_tokens: int | None = None
    url_policy: UrlPolicy = STRICT_POLICY
    api_key_origin: str | None = None

    def __repr__(self) -> str:
        # The dataclass repr would print the key into logs and tracebacks.
        key_state = "set" if self.api_key else "none"
        return (
            f"ProviderConfig(kind={self.kind}, model_name={self.model_name!r}, "
            f"base_url={self.base_url!r}, api_key=<{key_state}>, temperature={self.temperature}, "
            f"max_output_tokens={self.max_output_tokens}, request_timeout_s={self.request_timeout_s}, "
            f"connect_timeout_s={self.connect_timeout_s}, "
            f"context_window_tokens={self.context_window_tokens}, url_policy={self.url_policy}, "
            f"api_key_origin={self.api_key_origin!r})"
        )


@dataclass
class ContextPassage:
    """One retrieved passage as the model sees it; `number` is its [n] citation marker."""

    number: int
    document_title: str
    text: str
    location_label: str
    score: float
    # Cosine similarity of the question's embedding and the passage's, when retrieval has it.
    similarity: float | None = None
    # Table rows (a CSV, a spreadsheet sheet, a Word/PowerPoint/HTML table): the first and
    # last row the passage holds, and what the numbers count ("Data row": the N-th row after
    # a CSV's header; "Row": the sheet's own row number; "Table row").
    row_start: int | None = None
    row_end: int | None = None
    row_noun: str = "Data row"


@dataclass
class ChatTurn:
    role: Literal["user", "assistant"]
    content: str


@dataclass
class GenerationRequest:
    """A fully budgeted prompt.

    `messages` ends with the user turn that carries the passages and the question (see
    gql_server.rag.prompt); `passages` and `question` are repeated separately for providers
    that do not use a language model (the extractive answerer) and for citation checks.
    """

    system_prompt: str
    messages: list[ChatTurn]
    passages: list[ContextPassage]
    question: str
    # Lower-case question words -> their BM25 IDF in the model's corpus (gql_server.rag.evidence),
    # for the extractive answerer; None when unknown.
    term_weights: dict[str, float] | None = None
    # "STRONG" | "WEAK" | "NONE": how well the passages support an answer (llm/extractive.assess).
    evidence: str | None = None


@dataclass(frozen=True)
class TokenDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them; None where it reported nothing."""

    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class Finish:
    """Why the model stopped, as the provider said it; `truncated` when it hit its output
    token limit (OpenAI-compatible `finish_reason: "length"`, Ollama `done_reason: "length"`,
    Anthropic `stop_reason: "max_tokens"`), so the answer is cut off."""

    reason: str | None
    truncated: bool


GenerationEvent = TokenDelta | Usage | Finish


class ErrorKind(enum.Enum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTHENTICATION = "authentication"
    MODEL_NOT_FOUND = "model_not_found"
    RATE_LIMITED = "rate_limited"
    BAD_REQUEST = "bad_request"
    PROVIDER_ERROR = "provider_error"
    STREAM_INTERRUPTED = "stream_interrupted"


class LLMProviderError(Exception):
    """A provider failure, classified, with a sentence the user can act on."""

    def __init__(self, kind: ErrorKind, user_message: str, *, status_code: int | None = None) -> None:
        super().__init__(user_message)
        self.kind = kind
        self.user_message = user_message
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"LLMProviderError(kind={self.kind}, user_message={self.user_message!r})"


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of a connection test, in ragql's words only: `message` never repeats
    what the server sent (no body, no error text), since the URL may point anywhere."""

    ok: bool
    message: str
    latency_ms: float | None
    # Whether an HTTP response came back at all, its status, and whether the model is known
    # (None: not found out, e.g. the server was unreachable or refused the key).
    reachable: bool = False
    status_code: int | None = None
    model_found: bool | None = None


def failed_connection_check(failure: LLMProviderError, status_code: int | None) -> ConnectionCheck:
    """A failed connection test, from the failure the provider client classified (same rules
    for every provider: reachable when an HTTP status came back, model_found only when the
    server said the model does not exist)."""
    return ConnectionCheck(
        ok=False,
        message=failure.user_message,
        latency_ms=None,
        reachable=status_code is not None,
        status_code=status_code,
        model_found=False if failure.kind is ErrorKind.MODEL_NOT_FOUND else None,
    )


def passed_connection_check(
    where: str, model_name: str, started_at: float, *, answered: bool = False
) -> ConnectionCheck:
    """A passed connection test (same for every provider): the server answered with 200 and has
    the model — it listed it, or (`answered`) replied to a one-token request where it lists none.
    `started_at` is the `time.perf_counter()` reading taken before the first request."""
    return ConnectionCheck(
        ok=True,
        message=f"Connected to {where}; model '{model_name}' {'answered' if answered else 'is available'}.",
        latency_ms=(time.perf_counter() - started_at) * 1000,
        reachable=True,
        status_code=200,
        model_found=True,
    )


class LLMProvider(Protocol):
    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Yield the answer as it is generated, then `Finish` and `Usage` once each if the provider
        reports them.

        Raises `LLMProviderError`, possibly after some tokens were yielded.
        """
        ...

    async def check_connection(self) -> ConnectionCheck:
        """Verify the server is reachable, the key is accepted and the model exists. Never raises."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP connections this provider opened itself (not an injected client)."""
        ...


def redact_secret(text: str, secret: str | None) -> str:
    """Remove the API key from provider-supplied text before it reaches a user or a log.

    Some servers echo the key (or a prefix of it) back in error messages.
    """
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def shorten_detail(text: str, limit: int = 300) -> str:
    """Provider error bodies can be whole HTML pages; a sentence is enough for a user."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
