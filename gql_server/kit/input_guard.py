"""Refuse strings PostgreSQL cannot store, at the edge, for every field of the schema.

A NUL character (U+0000) cannot be stored in a PostgreSQL text value, and a lone surrogate
(U+D800–U+DFFF: JSON allows "\\ud800", Python keeps it) cannot be encoded as UTF-8. Both
used to reach the database from 41 of 91 string arguments (names, titles, queries, emails,
passwords, message content) and came back as INTERNAL_SERVER_ERROR. Neither is ever
meaningful input, so they are refused before any resolver runs:

- the field's result is a union with `InvalidInput` → an `InvalidInput` naming the argument
  (camelCase; nested input fields and list items as `name.field.0`, where the conventional
  `input` argument is left out so `createModel(input: {name})` reports `name`, like the
  service's own checks);
- otherwise → a public GraphQL error with code BAD_USER_INPUT.

How: after the schema is built, every GraphQL field with arguments that can hold a string
gets its resolver (and, for subscriptions, its `subscribe` function) wrapped with a check
of the coerced argument values. The values are checked after coercion, so variables and
inline literals (`"\\u0000"` in the document) are caught alike, on HTTP and on WebSockets.
Why not a strawberry SchemaExtension with a `resolve` hook: graphql-core applies that
middleware to every field of every result (a per-field call on every list item), and
never to a subscription's `subscribe`, which would run with the bad arguments. Why not a
FieldExtension: strawberry applies field extensions while converting fields, so they
would have to be attached to every field of every domain by hand. Fields without
string-capable arguments keep their resolver untouched (zero cost).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    default_field_resolver,
)

from gql_server.errors import InvalidInput, PublicError

# A NUL, or any surrogate code point: json.loads joins a valid pair into one character, so a
# surrogate left in a Python str is always unpaired.
_REFUSED = re.compile("[\x00\ud800-\udfff]")
_WRAPPED_MARKER = "_ragql_input_guard"
# Scalars whose values are never strings: nothing to check. (An `Upload` has a file name.)
_NON_STRING_SCALARS = {"Int", "Float", "Boolean"}


def refusal_reason(value: str) -> str | None:
    match = _REFUSED.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "must not contain NUL characters (\\u0000)"
    return "must not contain unpaired surrogate characters (\\ud800–\\udfff); send valid UTF-8 text"


def find_refused_string(value: Any, path: str) -> tuple[str, str] | None:
    """The (path, reason) of the first refused string inside an argument value, if any."""
    if isinstance(value, str):
        reason = refusal_reason(value)
        return (path, reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            # A key of a JSON-like scalar value can be refused too.
            if isinstance(key, str) and refusal_reason(key):
                return (path, refusal_reason(key) or "")
            found = find_refused_string(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_refused_string(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
        return None
    # An uploaded file: its name comes from the multipart header and is stored as is.
    filename = getattr(value, "filename", None)
    if isinstance(filename, str):
        reason = refusal_reason(filename)
        return (path, f"(the file name) {reason}") if reason else None
    return None


def _refused_argument(arguments: dict[str, Any]) -> tuple[str, str] | None:
    for name, value in arguments.items():
        if value is None or isinstance(value, (bool, int, float)):
            continue
        found = find_refused_string(value, "" if name == "input" else name)
        if found:
            return found
    return None


def _can_hold_string(type_: GraphQLInputType, seen: set[str] | None = None) -> bool:
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        type_ = type_.of_type
    if isinstance(type_, GraphQLScalarType):
        return type_.name not in _NON_STRING_SCALARS
    if isinstance(type_, GraphQLInputObjectType):
        seen = seen if seen is not None else set()
        if type_.name in seen:
            return False
        seen.add(type_.name)
        return any(_can_hold_string(field.type, seen) for field in type_.fields.values())
    return False  # enums: graphql-core accepts only their declared values


def _returns_invalid_input(field: GraphQLField) -> bool:
    type_ = field.type
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLUnionType) and any(
        member.name == InvalidInput.__name__ for member in type_.types
    )


def _refusal(field: GraphQLField, path: str, reason: str) -> InvalidInput:
    label = path or "input"
    message = f"{label} {reason}."
    if _returns_invalid_input(field):
        return InvalidInput.of(label, message)
    raise PublicError(message, "BAD_USER_INPUT")


def _guarded(field: GraphQLField, function: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(root: Any, info: Any, **arguments: Any) -> Any:
        refused = _refused_argument(arguments) if arguments else None
        if refused is not None:
            return _refusal(field, *refused)
        return function(root, info, **arguments)

    setattr(guarded, _WRAPPED_MARKER, True)
    return guarded


def _guarded_subscribe(field: GraphQLField, function: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(root: Any, info: Any, **arguments: Any) -> Any:
        refused = _refused_argument(arguments) if arguments else None
        if refused is not None:
            path, reason = refused
            # A subscription's events are not unions: always a GraphQL error.
            raise PublicError(f"{path or 'input'} {reason}.", "BAD_USER_INPUT")
        return function(root, info, **arguments)

    setattr(guarded, _WRAPPED_MARKER, True)
    return guarded


def guard_string_arguments(schema: GraphQLSchema) -> int:
    """Wrap every field that takes string-capable arguments; returns how many were wrapped."""
    wrapped = 0
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or not isinstance(type_, GraphQLObjectType):
            continue
        is_subscription = schema.subscription_type is not None and type_ is schema.subscription_type
        for field in type_.fields.values():
            if not any(_can_hold_string(argument.type) for argument in field.args.values()):
                continue
            if is_subscription and field.subscribe is not None:
                if not getattr(field.subscribe, _WRAPPED_MARKER, False):
                    field.subscribe = _guarded_subscribe(field, field.subscribe)
                    wrapped += 1
                continue
            if not getattr(field.resolve, _WRAPPED_MARKER, False):
                field.resolve = _guarded(field, field.resolve or default_field_resolver)
                wrapped += 1
    return wrapped
