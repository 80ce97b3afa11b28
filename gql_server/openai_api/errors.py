"""Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with its status codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class OpenAIError(Exception):
    status_code: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, "invalid_request_error", param, code)


def model_not_found(model: object) -> OpenAIError:
    # The same answer for a model that does not exist and one the caller may not use.
    return OpenAIError(
        404,
        f"The model `{str(model)[:200]}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model",
        "model_not_found",
    )


def unauthenticated(message: str) -> OpenAIError:
    return OpenAIError(401, message, "invalid_request_error", None, "invalid_api_key")


def missing_scope() -> OpenAIError:
    return OpenAIError(
        403,
        "This personal access token does not have the CHAT scope the OpenAI-compatible API needs.",
        "permission_error",
        None,
        "insufficient_scope",
    )
