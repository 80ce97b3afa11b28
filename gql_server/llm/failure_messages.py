"""The sentences users see when a provider fails, written once for all providers.

Each function takes `where`, a lower-case description of the server such as
"the Ollama server at http://gpu:11434", so every message names the exact endpoint
the administrator configured and says what to check next. No message ever contains an
API key: provider-supplied detail must be passed through `redact_secret` first.
"""

from __future__ import annotations

from gql_server.llm.base import ErrorKind, LLMProviderError


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
    return LLMProviderError(ErrorKind.TIMEOUT, message)


def connect_timeout_failure(where: str, timeout_s: float) -> LLMProviderError:
    return LLMProviderError(
        ErrorKind.TIMEOUT,
        f"Could not connect to {where} within {_seconds(timeout_s)}. Check the base URL and that "
        "the server is reachable from the ragql server (firewall, VPN, DNS).",
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
    return LLMProviderError(ErrorKind.AUTHENTICATION, message, status_code=status_code)


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
    return LLMProviderError(ErrorKind.MODEL_NOT_FOUND, message, status_code=404)


def rate_limited_failure(
    where: str, status_code: int | None, *, overloaded: bool = False
) -> LLMProviderError:
    status = f" (HTTP {status_code})" if status_code else ""
    if overloaded:
        message = f"{_capitalized(where)} is overloaded right now{status}. Try again in a moment."
    else:
        message = (
            f"{_capitalized(where)} is rate limiting requests{status}. Wait a moment and try again, "
            "or check the account's usage limits."
        )
    return LLMProviderError(ErrorKind.RATE_LIMITED, message, status_code=status_code)


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
