"""Choosing and validating a provider from a model's stored settings.

Base URL rules, decided here once:
- OLLAMA: optional; blank means http://localhost:11434, where Ollama listens by default.
  It must be the server's root, not its OpenAI-compatible /v1 path.
- OPENAI_COMPATIBLE: required, because there is no sensible default among the many
  servers that speak this API; it is the URL the API lives under, usually ending in /v1.
- ANTHROPIC: optional; blank means https://api.anthropic.com.
- EXTRACTIVE: ignored, as are the model name, temperature and max output tokens.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import httpx

from gql_server.llm.anthropic import DEFAULT_ANTHROPIC_BASE_URL, AnthropicProvider
from gql_server.llm.base import LLMProvider, ProviderConfig, ProviderKind
from gql_server.llm.extractive import ExtractiveProvider
from gql_server.llm.ollama import DEFAULT_OLLAMA_BASE_URL, OllamaProvider
from gql_server.llm.openai_compatible import OpenAICompatibleProvider

MIN_TEMPERATURE = 0.0
MAX_TEMPERATURE = 2.0
MIN_OUTPUT_TOKENS = 1
MAX_OUTPUT_TOKENS = 32768


def build_provider(config: ProviderConfig, *, http_client: httpx.AsyncClient | None = None) -> LLMProvider:
    """The provider for `config`. Call `aclose()` on it when done.

    `http_client` is used by the Ollama provider only: the `openai` and `anthropic` clients
    bring their own HTTP stack (httpx2), so those providers open their own connection pool.
    Building one provider per model and reusing it keeps those connections warm.
    """
    match config.kind:
        case ProviderKind.OLLAMA:
            return OllamaProvider(config, http_client=http_client)
        case ProviderKind.OPENAI_COMPATIBLE:
            return OpenAICompatibleProvider(config)
        case ProviderKind.ANTHROPIC:
            return AnthropicProvider(config)
        case ProviderKind.EXTRACTIVE:
            return ExtractiveProvider()
    raise ValueError(f"Unknown provider kind: {config.kind}")


def effective_base_url(kind: ProviderKind, base_url: str | None) -> str | None:
    """The URL a provider will actually call, defaults applied (for display in the UI)."""
    if base_url and base_url.strip():
        return base_url.strip().rstrip("/")
    if kind is ProviderKind.OLLAMA:
        return DEFAULT_OLLAMA_BASE_URL
    if kind is ProviderKind.ANTHROPIC:
        return DEFAULT_ANTHROPIC_BASE_URL
    return None


def validate_provider_config(
    kind: ProviderKind,
    model_name: str | None,
    base_url: str | None,
    temperature: float,
    max_output_tokens: int,
    *,
    has_api_key: bool | None = None,
) -> list[str]:
    """Every problem with these settings, each as a sentence; empty when they are usable.

    `has_api_key` is optional so callers that do not know yet (a form being filled in) can
    skip that check; when given, Anthropic without a key is reported.
    """
    if kind is ProviderKind.EXTRACTIVE:
        return []
    problems: list[str] = []
    if not model_name or not model_name.strip():
        problems.append("A model name is required (for example 'llama3.2' or 'gpt-4o-mini').")
    elif model_name != model_name.strip():
        problems.append("The model name must not start or end with spaces.")

    if base_url is None or not base_url.strip():
        if kind is ProviderKind.OPENAI_COMPATIBLE:
            problems.append(
                "A base URL is required for an OpenAI-compatible server (for example http://localhost:8000/v1)."
            )
    else:
        problems.extend(_base_url_problems(kind, base_url.strip()))

    if (
        not isinstance(temperature, int | float)
        or math.isnan(temperature)
        or not (MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE)
    ):
        problems.append(f"Temperature must be between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}.")
    if (
        isinstance(max_output_tokens, bool)
        or not isinstance(max_output_tokens, int)
        or not (MIN_OUTPUT_TOKENS <= max_output_tokens <= MAX_OUTPUT_TOKENS)
    ):
        problems.append(
            f"Max output tokens must be a whole number from {MIN_OUTPUT_TOKENS} to {MAX_OUTPUT_TOKENS}."
        )
    if kind is ProviderKind.ANTHROPIC and has_api_key is False:
        problems.append("Anthropic needs an API key.")
    return problems


def _base_url_problems(kind: ProviderKind, base_url: str) -> list[str]:
    if any(character.isspace() for character in base_url):
        return ["The base URL must not contain spaces."]
    try:
        parts = urlsplit(base_url)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return [f"The base URL '{base_url}' is not a valid URL."]
    if parts.scheme not in ("http", "https"):
        return ["The base URL must start with http:// or https://."]
    if not parts.hostname:
        return ["The base URL must include a host name, as in http://localhost:11434."]
    problems: list[str] = []
    if port == 0:
        problems.append("The base URL's port must not be 0.")
    if parts.username or parts.password:
        # The URL is stored and shown in plain text, unlike the encrypted API key.
        problems.append("Do not put credentials in the base URL; use the API key field.")
    if parts.query or parts.fragment:
        problems.append("The base URL must not contain a query (?...) or fragment (#...).")
    path = parts.path.rstrip("/")
    if kind is ProviderKind.OLLAMA and (path.endswith("/v1") or path.endswith("/api")):
        problems.append(
            "For Ollama, use the server's root URL (such as http://localhost:11434) without /v1 or /api."
        )
    if kind is ProviderKind.ANTHROPIC and path.endswith("/v1"):
        problems.append("For Anthropic, leave /v1 out of the base URL (use https://api.anthropic.com).")
    return problems
