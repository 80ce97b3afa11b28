"""The sentences said when a provider fails, written once for all providers.

Two audiences. The detail (`LLMProviderError.user_message`) is for administrators: each
function takes `where`, a lower-case description of the server such as "the Ollama server
at http://gpu:11434", so the message names the exact endpoint the administrator configured,
quotes what the provider answered and says what to check next. It is what
`testModelConnection` (admin-only) reports and what the server log records. A user who is
not an administrator never sees it — the base URL is admin-only and an upstream body may
say anything — and gets `public_failure_message` instead: what kind of failure, no URL, no
upstream text, and a reference under which the log holds the detail. No message ever
contains an API key: provider-supplied detail must be passed through `redact_secret` first.
"""

from __future__ import annotations

from gql_server.llm.base import ErrorKind, LLMProviderError

PUBLIC_FAILURE = "The model's provider failed"
_PUBLIC_SUMMARIES = {
    ErrorKind.TIMEOUT: "The model's provider did not answer in time",
    ErrorKind.CONNECTION: "ragql could not connect to the model's provider",
    ErrorKind.AUTHENTICATION: "The model's provider did not accept the model's API key",
    ErrorKind.MODEL_NOT_FOUND: "The model's provider does not offer the configured model",
    ErrorKind.RATE_LIMITED: "The model's provider is busy or rate limiting requests; try again in a moment",
    ErrorKind.BAD_REQUEST: "The model's provider rejected the request",
    ErrorKind.PROVIDER_ERROR: PUBLIC_FAILURE,
    ErrorKind.STREAM_INTERRUPTED: "The answer was cut off: the connection to the model's provider ended early",
}


class ProviderFailure(LLMProviderError):
    """An LLMProviderError that also carries a summary any user may see (e.g. a timeout's
    duration), without the endpoint or the provider's own words."""

    def __init__(
        self, kind: ErrorKind, detail: str, *, public_summary: str, status_code: int | None = None
    ) -> None:
        super().__init__(kind, detail, status_code=status_code)
        self.public_summary = public_summary


def public_failure_message(failure: LLMProviderError | None, reference: str) -> str:
    """What a user who is not an administrator sees when the provider fails."""
    if isinstance(failure, ProviderFailure):
        summary = failure.public_summary
    elif failure is not None:
        summary = _PUBLIC_SUMMARIES.get(failure.kind, PUBLIC_FAILURE)
    else:
        summary = PUBLIC_FAILURE
    return f"{summary} (reference {reference}); an administrator can see the details."


def detailed_failure_message(detail: str, reference: str) -> str:
    """What an administrator sees (their own chats): the detail, with the log's reference."""
    return f"{detail.rstrip()} (reference {reference})"


def _capitalized(where: str) -> str:
    return where[:1].upper() + where[1:]


def _with_detail(detail: str | None) -> str:
    return f": {detail.rstrip('.')}." if detail else "."


def _seconds(value: float) -> str:
    return f"{value:g} second" if value == 1 else f"{value:g} seconds"


def timeout_failure(where: str, timeout_s: float, *, during_answer: bool) -> LLMProviderError:
    if during_answer:
        message = (
            f"{_capitalized(where)} stopped sending the answer for more than {_seconds(timeout_s)}. "
            "The server may be overloaded; try again, or raise the model's request timeout."
        )
    else:
        message = (
            f"{_capitalized(where)} did not respond within {_seconds(timeout_s)}. Check that it is "
            "running and not overloaded, or raise the model's request timeout (large models can "
            "take a while to load)."
        )
    public = (
        f"The model's provider stopped sending the answer for more than {_seconds(timeout_s)}"
        if during_answer
        else f"The model's provider did not respond within {_seconds(timeout_s)}"
    )
    return ProviderFailure(ErrorKind.TIMEOUT, message, public_summary=public)


def connect_timeout_failure(where: str, timeout_s: float) -> LLMProviderError:
    return ProviderFailure(
        ErrorKind.TIMEOUT,
        f"Could not connect to {where} within {_seconds(timeout_s)}. Check the base URL and that "
        "the server is reachable from the ragql server (firewall, VPN, DNS).",
        public_summary=f"ragql could not connect to the model's provider within {_seconds(timeout_s)}",
    )


def connection_failure(where: str) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.CONNECTION,
        f"Could not connect to {where}. Check the base URL and that the server is running and "
        "reachable from the ragql server.",
    )


def authentication_failure(where: str, status_code: int | None, *, has_key: bool) -> LLMProviderError:
    status = f" (HTTP {status_code})" if status_code else ""
    if has_key:
        message = f"{_capitalized(where)} rejected the API key{status}. Check the model's API key."
    else:
        message = (
            f"{_capitalized(where)} requires an API key{status}, and none is set. "
            "Add the API key in the model's settings."
        )
    public = (
        "The model's provider rejected the model's API key"
        if has_key
        else "The model's provider requires an API key, and none is set"
    )
    return ProviderFailure(ErrorKind.AUTHENTICATION, message, public_summary=public, status_code=status_code)


def permission_failure(where: str, status_code: int | None, detail: str | None) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.AUTHENTICATION,
        f"{_capitalized(where)} accepted the API key but refused this request (HTTP {status_code})"
        f"{_with_detail(detail)} Check the key's permissions or the account's access to this model.",
        status_code=status_code,
    )


def model_not_found_failure(where: str, model_name: str | None, hint: str = "") -> LLMProviderError:
    message = f"{_capitalized(where)} has no model named '{model_name}'. Check the model name"
    message += f" {hint}." if hint else "."
    # The model name is no secret: every user of the model sees `llmModelName`.
    public = f"The model's provider has no model named '{model_name}'"
    return ProviderFailure(ErrorKind.MODEL_NOT_FOUND, message, public_summary=public, status_code=404)


def rate_limited_failure(
    where: str, status_code: int | None, *, overloaded: bool = False
) -> LLMProviderError:
    status = f" (HTTP {status_code})" if status_code else ""
    if overloaded:
        message = f"{_capitalized(where)} is overloaded right now{status}. Try again in a moment."
        public = "The model's provider is overloaded right now; try again in a moment"
    else:
        message = (
            f"{_capitalized(where)} is rate limiting requests{status}. Wait a moment and try again, "
            "or check the account's usage limits."
        )
        public = "The model's provider is rate limiting requests; wait a moment and try again"
    return ProviderFailure(ErrorKind.RATE_LIMITED, message, public_summary=public, status_code=status_code)


def bad_request_failure(where: str, status_code: int | None, detail: str | None) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.BAD_REQUEST,
        f"{_capitalized(where)} rejected the request (HTTP {status_code}){_with_detail(detail)} "
        "Check the model's settings (model name, max output tokens, temperature).",
        status_code=status_code,
    )


def provider_failure(where: str, status_code: int | None, detail: str | None) -> LLMProviderError:
    status = f" (HTTP {status_code})" if status_code else ""
    return LLMProviderError(
        ErrorKind.PROVIDER_ERROR,
        f"{_capitalized(where)} failed to answer{status}{_with_detail(detail)} Try again; if it keeps "
        "failing, check the server's logs.",
        status_code=status_code,
    )


def stream_interrupted_failure(where: str) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.STREAM_INTERRUPTED,
        f"The answer from {where} was cut off: the connection ended before the answer was "
        "complete. Try asking again.",
    )


def invalid_response_failure(where: str, detail: str) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.PROVIDER_ERROR,
        f"{_capitalized(where)} sent a response ragql could not read ({detail}). Check that the "
        "base URL points at the right kind of server.",
    )
