"""Offset pagination with opaque cursors: the one rule every list field follows.

Every list takes `first` (1 to MAX_PAGE_SIZE), then either `offset` or `after` (the
`endCursor` of the previous page). Anything else — `first` past the maximum or below 1, a
negative offset, both offset and after, a cursor this server did not hand out — answers the
same BAD_USER_INPUT error on every list (kit/page.py parse_page_arguments): nothing is
clamped silently, so a client never mistakes a shortened page for the end of the list.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

# The documented maximum page size of every list field.
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class PageRequest:
    limit: int
    offset: int


class InvalidPageRequest(ValueError):
    pass


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(value)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidPageRequest("The cursor is not valid; use a cursor returned by this list.") from error
    if kind != "offset" or offset < 0:
        raise InvalidPageRequest("The cursor is not valid; use a cursor returned by this list.")
    return offset


def page_request(first: int, offset: int | None, after: str | None) -> PageRequest:
    """`after` (a cursor) continues after the item it names; `offset` skips that many items."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidPageRequest(f"`first` must be between 1 and {MAX_PAGE_SIZE}.")
    if offset is not None and after is not None:
        raise InvalidPageRequest("Give either `offset` or `after`, not both.")
    if after is not None:
        return PageRequest(limit=first, offset=decode_cursor(after) + 1)
    if offset is not None and offset < 0:
        raise InvalidPageRequest("`offset` must not be negative.")
    return PageRequest(limit=first, offset=offset or 0)


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
