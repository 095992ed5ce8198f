"""What an operation may cost, estimated from its document before anything runs.

The model is GitHub's and Shopify's: the cost of an operation is the number of objects its
response can hold. Scalars and enums are free; every object costs 1; a connection's ``first``
(or ``last``; its default when omitted, capped at the page size cap) multiplies everything
selected under its ``edges``. Aliases and fragments count as what they expand to, because the
walk follows the document as the executor would. Lists that take no page size (embedded
sub-documents, a few small admin lists) count with a per-field hint, and introspection lists
with the schema's own average sizes (its single objects, such as a type's ``ofType`` chain,
are free), so GraphiQL's schema fetch is cheap while nested ``fields { type { fields ... } }``
bombs are not.

The estimate is an upper bound of what the executor will produce; ``CostLimit`` refuses a
document above the caller's limit before execution and reports ``extensions.cost`` on every
response, with the objects the response actually holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_list_type,
    parse,
)
from graphql.type import GraphQLCompositeType, GraphQLObjectType
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from graphql.utilities import get_operation_ast, type_from_ast

from app.platform.entities.service import MAX_PAGE_SIZE

PAGE_ARGS = ("first", "last")
# Lists without a page size: how many objects they hold at most (or typically).
LIST_HINTS: dict[str, int] = {
    "Teacher.availability": 7 * 4,
    "RecurringBookingResult.booked": 52,
    "RecurringBookingResult.skipped": 52,
    "Query.agentTools": 20,
    "AgentReply.toolCalls": 64,
}
DEFAULT_LIST_HINT = 20
# Introspection lists count with the schema's averages, but a path may nest at most this many
# of them: the standard introspection query needs three (types > fields > args).
MAX_INTROSPECTION_LIST_NESTING = 3


class TooComplex(Exception):
    """The document nests introspection lists deeper than any client needs."""


@lru_cache(maxsize=128)
def parse_document(source: str, max_tokens: int | None = None) -> DocumentNode:
    """Shared by the parser cache and the executor's time budget (one parse per text)."""
    return parse(source, max_tokens=max_tokens)


class _Sizes:
    """Average lengths of introspection lists in this schema (computed once)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        types = list(schema.type_map.values())
        fields = [f for t in types for f in (getattr(t, "fields", None) or {}).values()]
        n_types = max(len(types), 1)

        def avg(total: int, over: int) -> int:
            return max(1, -(-total // max(over, 1)))  # ceiling

        self.by_field = {
            "types": len(types),
            "fields": avg(len(fields), n_types),
            "inputFields": avg(len(fields), n_types),
            "args": avg(sum(len(getattr(f, "args", {}) or {}) for f in fields), len(fields)),
            "enumValues": avg(sum(len(getattr(t, "values", {}) or {}) for t in types), n_types),
            "interfaces": 2,
            "possibleTypes": avg(len(types), 4),
            "directives": len(schema.directives),
            "locations": 20,
        }


_sizes: dict[int, _Sizes] = {}


def _introspection_sizes(schema: GraphQLSchema) -> _Sizes:
    key = id(schema)
    if key not in _sizes:
        _sizes[key] = _Sizes(schema)
    return _sizes[key]


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any],
        max_page: int,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.max_page = max_page
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.sizes = _introspection_sizes(schema)

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLCompositeType, seen: frozenset
    ) -> Iterator[tuple[FieldNode, GraphQLCompositeType]]:
        """The fields a selection set expands to, fragments inlined."""
        if selection_set is None:
            return
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                yield node, parent
            elif isinstance(node, InlineFragmentNode):
                target = parent
                if node.type_condition is not None:
                    target = type_from_ast(self.schema, node.type_condition) or parent
                yield from self.selections(node.selection_set, target, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # validation reports unknown and cyclic fragments
                target = type_from_ast(self.schema, fragment.type_condition) or parent
                yield from self.selections(fragment.selection_set, target, seen | {name})

    def cost(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLCompositeType,
        *,
        page: int | None = None,
        introspection_lists: int = 0,
    ) -> int:
        total = 0
        for node, owner in self.selections(selection_set, parent, frozenset()):
            total += self.field_cost(node, owner, page, introspection_lists)
        return total

    def field_cost(
        self, node: FieldNode, owner: GraphQLCompositeType, page: int | None, nested: int
    ) -> int:
        name = node.name.value
        if name == "__typename":
            return 0
        definition = self._field_definition(owner, name)
        if definition is None:
            return 0  # validation reports unknown fields
        output = get_nullable_type(definition.type)
        named = get_named_type(output)
        if not is_composite_type(named):
            return 0
        introspection = name.startswith("__") or named.name.startswith("__")
        if introspection and is_list_type(output):
            nested += 1
            if nested > MAX_INTROSPECTION_LIST_NESTING:
                raise TooComplex(
                    f"Introspection may nest at most {MAX_INTROSPECTION_LIST_NESTING} lists "
                    f"(types, fields, args ...) on one path; '{name}' is one too many."
                )
        inner_page = self._page_size(node, definition)
        if inner_page is not None and "edges" in getattr(named, "fields", {}):
            # A connection: its page size multiplies what is selected under edges/nodes.
            return 1 + self.cost(node.selection_set, named, page=inner_page)
        children = self.cost(
            node.selection_set, named, introspection_lists=nested if introspection else 0
        )
        if is_list_type(output):
            items = self._list_length(owner, name, introspection, page, inner_page)
            return items * (1 + children)
        # Introspection's single objects (a field's ``type``, its ``ofType`` chain) cannot
        # multiply anything; only its lists are counted.
        return children if introspection else 1 + children

    def _field_definition(self, owner: GraphQLCompositeType, name: str) -> Any:
        if name in ("__schema", "__type"):
            return _meta(name)
        fields = getattr(owner, "fields", None)
        return fields.get(name) if fields else None

    def _list_length(
        self,
        owner: GraphQLCompositeType,
        name: str,
        introspection: bool,
        page: int | None,
        own_page: int | None,
    ) -> int:
        if own_page is not None:
            return own_page
        if page is not None and name in ("edges", "nodes"):
            return page
        if introspection:
            return self.sizes.by_field.get(name, DEFAULT_LIST_HINT)
        return LIST_HINTS.get(f"{owner.name}.{name}", DEFAULT_LIST_HINT)

    def _page_size(self, node: FieldNode, definition: Any) -> int | None:
        args = getattr(definition, "args", {}) or {}
        if not any(a in args for a in PAGE_ARGS):
            return None
        sizes = [self._argument(node, definition, a) for a in PAGE_ARGS if a in args]
        given = [s for s in sizes if s is not None]
        if not given:
            return self.max_page
        return max(0, min(max(given), self.max_page))

    def _argument(self, node: FieldNode, definition: Any, name: str) -> int | None:
        for arg in node.arguments or ():
            if arg.name.value != name:
                continue
            value = arg.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                raw = self.variables.get(value.name.value)
                if isinstance(raw, int) and not isinstance(raw, bool):
                    return raw
                return None if raw is None else self.max_page
            return None
        default = definition.args[name].default_value
        return default if isinstance(default, int) and not isinstance(default, bool) else None


def _meta(name: str) -> Any:
    return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef


def estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    *,
    max_page: int = MAX_PAGE_SIZE,
) -> int:
    """The estimated cost of the operation (at least 1); ``TooComplex`` for introspection
    nested beyond any client's needs. Documents that fail validation cost what their valid
    parts cost: the caller validates separately."""
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        return 1
    root = schema.get_root_type(operation.operation)
    if not isinstance(root, GraphQLObjectType):
        return 1
    walker = _Walker(schema, document, variables or {}, max_page)
    return max(1, walker.cost(operation.selection_set, root))


_COSTS: dict[tuple[int, str | None, tuple[Any, ...]], tuple[DocumentNode, int]] = {}
_MAX_COSTS = 512


def estimate_cached(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """``estimate``, remembered per parsed document (the parser cache hands out the same
    document object for the same text) and the variables that can change it (numbers, for
    page sizes; of the others only their type counts): a client repeating its operations
    pays for the walk once. Whatever raises is not remembered."""
    numbers = tuple(
        sorted(
            (k, v if isinstance(v, int | float | None) else type(v).__name__)
            for k, v in (variables or {}).items()
        )
    )
    key = (id(document), operation_name, numbers)
    hit = _COSTS.get(key)
    if hit is not None and hit[0] is document:  # the id may belong to a newer document
        return hit[1]
    cost = estimate(schema, document, operation_name, variables)
    if len(_COSTS) >= _MAX_COSTS:
        _COSTS.pop(next(iter(_COSTS)))
    _COSTS[key] = (document, cost)
    return cost


def too_complex_error(message: str) -> GraphQLError:
    from app.platform.errors import QueryTooComplex

    return GraphQLError(message, original_error=QueryTooComplex(message))
