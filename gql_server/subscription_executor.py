"""Subscription events of plain leaf fields, executed without graphql-core's field walk.

A subscription runs its selection set once per event. For `messageStream` that is one
TOKEN event per generated token per subscriber — thousands per second — and graphql-core's
general execution (collect the fields, build a resolve-info object per field, complete
each value through the type system) was a quarter of the server's CPU under load
(docs/benchmarks.md, chat load).

`SubscriptionEventExecutor` compiles, once per operation and payload class, a plan for
events whose selection (after fragments, aliases and @skip/@include with the operation's
variables) is only `__typename` and argument-less scalar or enum fields served by
strawberry's default attribute resolver. Such an event is executed by calling those
same resolvers and the types' own `serialize`, which is what graphql-core would do for
them. Anything else — nested objects, lists, fields with resolvers, arguments or other
directives, field middleware, a null for a non-null field (the error path), a value a
scalar refuses — goes through graphql-core unchanged. tests/test_subscription_executor.py
checks the results are identical both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    is_abstract_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import collect_fields, collect_subfields
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_STRAWBERRY_FIELD = "strawberry-definition"
_PLAIN_DIRECTIVES = frozenset({"skip", "include"})


@dataclass(frozen=True, slots=True)
class _LeafField:
    key: str
    resolve: Callable[..., Any] | None  # None: a constant (__typename)
    serialize: Callable[[Any], Any] | None
    non_null: bool
    constant: str | None = None


@dataclass(frozen=True, slots=True)
class _EventPlan:
    root_key: str
    fields: tuple[_LeafField, ...]

    def run(self, payload: Any) -> dict[str, Any] | None:
        """The event's data, or None when graphql-core must handle it (null for a
        non-null field, a value the scalar cannot serialize)."""
        result: dict[str, Any] = {}
        for field in self.fields:
            if field.resolve is None:
                result[field.key] = field.constant
                continue
            value = field.resolve(payload, None)
            if value is None:
                if field.non_null:
                    return None
                result[field.key] = None
                continue
            assert field.serialize is not None
            try:
                serialized = field.serialize(value)
            except Exception:
                return None
            if serialized is None or serialized is Undefined:
                return None
            result[field.key] = serialized
        return {self.root_key: result}


class SubscriptionEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, with compiled plans for leaf-only subscription events."""

    _per_event = False
    fast_events = 0  # per process, for tests and /metrics-style checks

    def build_per_event_executor(self, payload: Any) -> Any:
        if "_event_plans" not in self.__dict__:
            # Created on the operation's executor; the per-event copies share it.
            self._event_plans: dict[type, _EventPlan | None] = {}
        executor = super().build_per_event_executor(payload)
        executor._per_event = True  # type: ignore[attr-defined]
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        middleware = self.middleware_manager
        if self._per_event and not (middleware and middleware.middlewares) and self.abort_signal is None:
            payload = self.root_value
            payload_class = type(payload)
            plans = self._event_plans
            if payload_class in plans:
                plan = plans[payload_class]
            else:
                try:
                    plan = self._compile(payload_class)
                except Exception:
                    plan = None
                plans[payload_class] = plan
            if plan is not None:
                data = plan.run(payload)
                if data is not None:
                    SubscriptionEventExecutor.fast_events += 1
                    return self.finish(self.build_response(data))
        return super().execute_operation(serially)

    def _compile(self, payload_class: type) -> _EventPlan | None:
        definition = getattr(payload_class, "__strawberry_definition__", None)
        schema: GraphQLSchema = self.schema
        root_type = schema.subscription_type
        if definition is None or root_type is None:
            return None
        root = collect_fields(
            schema, self.fragments, self.variable_values, root_type, self.operation, self.hide_suggestions
        )
        if root.new_defer_usages or root.forbidden_directive_instances or len(root.grouped_field_set) != 1:
            return None
        ((root_key, root_details),) = root.grouped_field_set.items()
        root_field = root_type.fields.get(root_details[0].node.name.value)
        if root_field is None or root_field.subscribe is None:  # strawberry: resolve returns the event
            return None
        return_type = root_field.type.of_type if is_non_null_type(root_field.type) else root_field.type
        runtime = schema.get_type(definition.name)
        if not isinstance(runtime, GraphQLObjectType):
            return None
        if is_abstract_type(return_type):
            if not schema.is_sub_type(return_type, runtime):  # type: ignore[arg-type]
                return None
        elif return_type is not runtime:
            return None
        if any(_unusual_directives(details.node) for details in root_details):
            return None
        selection = collect_subfields(
            schema,
            self.fragments,
            self.variable_values,
            self.operation,
            runtime,
            root_details,
            self.hide_suggestions,
        )
        if selection.new_defer_usages or selection.forbidden_directive_instances:
            return None
        fields: list[_LeafField] = []
        for key, details in selection.grouped_field_set.items():
            if any(detail.fragment_variable_values or _unusual_directives(detail.node) for detail in details):
                return None
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append(_LeafField(key, None, None, True, constant=runtime.name))
                continue
            field_def = runtime.fields.get(name)
            if field_def is None or node.arguments or field_def.args:
                return None
            strawberry_field = field_def.extensions.get(_STRAWBERRY_FIELD)
            if (
                field_def.resolve is None
                or not getattr(field_def.resolve, "_is_default", False)
                or strawberry_field is None
                or not strawberry_field.is_basic_field
            ):
                return None
            non_null = is_non_null_type(field_def.type)
            leaf = field_def.type.of_type if non_null else field_def.type  # type: ignore[attr-defined]
            if not is_leaf_type(leaf):
                return None
            fields.append(_LeafField(key, field_def.resolve, leaf.serialize, non_null))
        return _EventPlan(root_key, tuple(fields))


def _unusual_directives(node: Any) -> bool:
    return any(directive.name.value not in _PLAIN_DIRECTIVES for directive in node.directives or ())
