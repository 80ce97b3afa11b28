"""A chat-completions request body, checked and reduced to what ragql uses.

ragql answers from a model's documents with the model's own settings, so:
- `messages` are the conversation: the last `user` message is the question, the `user` and
  `assistant` messages before it the history; `system`/`developer` messages are ignored
  (the model's system prompt, set by an administrator, applies); text content parts only.
- Ignored (accepted, no effect): temperature, top_p, max_tokens, max_completion_tokens,
  presence_penalty, frequency_penalty, seed, stop, user, metadata, logit_bias,
  parallel_tool_calls, service_tier, reasoning_effort, top_logprobs, and any parameter
  ragql does not know (as most OpenAI-compatible servers do).
- Refused with 400 (they would change the answer's shape): n other than 1, tools/functions
  (a non-empty list), tool_choice/function_call other than "none"/"auto", response_format
  other than text, logprobs true, audio output, `tool`/`function` messages, image/audio parts.
- ragql's own: `store` (default true: the exchange is kept as a chat session; false keeps
  nothing), `stream_options.include_usage` as OpenAI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gql_server.llm.base import ChatTurn
from gql_server.openai_api.errors import invalid_request

IGNORED_ROLES = ("system", "developer")


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    question: str
    history: tuple[ChatTurn, ...]
    stream: bool
    include_usage: bool
    store: bool


def _type_name(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _boolean(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_request(
            f"Invalid type for '{name}': expected a boolean, but got {_type_name(value)}.", name
        )
    return value


def _text_of(content: object, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
                kind = part.get("type") if isinstance(part, dict) else _type_name(part)
                raise invalid_request(
                    f"Only text content parts are supported; '{param}[{index}]' is {kind!r}.",
                    f"{param}[{index}]",
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid_request(f"'{param}[{index}].text' must be a string.", f"{param}[{index}].text")
            parts.append(text)
        return "\n".join(parts)
    raise invalid_request(
        f"Invalid type for '{param}': expected a string or an array of content parts, "
        f"but got {_type_name(content)}.",
        param,
    )


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid_request("ragql returns one choice per request: 'n' must be 1.", "n")
    for name in ("tools", "functions"):
        if body.get(name):
            raise invalid_request(f"ragql does not support '{name}': it answers from documents only.", name)
    for name in ("tool_choice", "function_call"):
        if body.get(name) not in (None, "none", "auto"):
            raise invalid_request(f"ragql does not support '{name}'.", name)
    response_format = body.get("response_format")
    if response_format is not None and not (
        isinstance(response_format, dict) and response_format.get("type") == "text"
    ):
        raise invalid_request(
            "ragql answers in text with [n] source markers: 'response_format' must be text.",
            "response_format",
        )
    if body.get("logprobs") is True:
        raise invalid_request(
            "ragql does not return log probabilities: 'logprobs' must be false.", "logprobs"
        )
    modalities = body.get("modalities")
    if body.get("audio") is not None or (isinstance(modalities, list) and set(modalities) - {"text"}):
        raise invalid_request("ragql answers in text only.", "modalities")


def parse_completion_request(body: object) -> CompletionRequest:
    if not isinstance(body, dict):
        raise invalid_request(f"The request body must be a JSON object, but got {_type_name(body)}.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request(
            "You must provide a model parameter: the id of a ragql model (GET /v1/models).", "model"
        )
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid_request(
            f"Invalid type for 'messages': expected an array, but got {_type_name(messages)}.", "messages"
        )
    if not messages:
        raise invalid_request(
            "'messages' is empty: send at least one user message.", "messages", "empty_array"
        )
    _refuse_unsupported(body)
    turns: list[ChatTurn] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid_request(f"Invalid type for '{param}': expected an object.", param)
        role = message.get("role")
        if role in IGNORED_ROLES:
            _text_of(message.get("content"), f"{param}.content")
            continue
        if role not in ("user", "assistant"):
            raise invalid_request(
                f"Invalid value for '{param}.role': {str(role)[:40]!r}; ragql takes user, assistant, "
                "system and developer messages (no tool messages).",
                f"{param}.role",
            )
        text = _text_of(message.get("content"), f"{param}.content")
        if role == "assistant" and message.get("tool_calls"):
            raise invalid_request("ragql does not support tool calls.", f"{param}.tool_calls")
        turns.append(ChatTurn(role="user" if role == "user" else "assistant", content=text))
    last_user = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == "user"), None)
    if last_user is None:
        raise invalid_request(
            "'messages' has no user message: the last user message is the question.", "messages"
        )
    question = turns[last_user].content
    history = tuple(turn for turn in turns[:last_user] if turn.content.strip())
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return CompletionRequest(
        model=model.strip(),
        question=question,
        history=history,
        stream=_boolean(body, "stream", False),
        include_usage=include_usage,
        store=_boolean(body, "store", True),
    )
