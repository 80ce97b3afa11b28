"""The generic page type every list field returns (`ModelPage`, `DocumentPage`,
`ChatMessagePage`, ...), and the argument parsing that applies the one rule of
kit/pagination.py."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

from gql_server.errors import PublicError
from gql_server.kit.pagination import InvalidPageRequest, PageRequest, encode_cursor, page_request

T = TypeVar("T")


@strawberry.type(
    description="One page of a list (at most 100 items: `first` is 1 to 100); continue with `after: endCursor`."
)
class Page(Generic[T]):
    items: list[T]
    total_count: int
    has_next_page: bool
    end_cursor: str | None


def build_page(items: list[T], total_count: int, request: PageRequest) -> Page[T]:
    last_offset = request.offset + len(items) - 1
    return Page(
        items=items,
        total_count=total_count,
        has_next_page=request.offset + len(items) < total_count,
        end_cursor=encode_cursor(last_offset) if items else None,
    )


def parse_page_arguments(first: int, offset: int | None, after: str | None) -> PageRequest:
    try:
        return page_request(first, offset, after)
    except InvalidPageRequest as error:
        raise PublicError(str(error), "BAD_USER_INPUT") from error
