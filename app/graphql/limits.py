"""Bounds on what one GraphQL operation may cost the shared event loop.

Every organization is served by the same loop, so each operation is bounded before and while
it runs: the document's size (tokens, aliases, depth: Strawberry's own limiters), its
estimated cost (``app.graphql.cost``), the objects it may put in a response (counted as pages
are read), and the wall-clock time a read may take. Parsing and validation are cached per
document text, so a client repeating its operations pays for them once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType as StrawberryOperationType

from app.graphql.cost import TooComplex, estimate_cached, parse_document
from app.platform.errors import QueryTooComplex

T = TypeVar("T")

MAX_DEPTH = 12  # levels of fields, the root field being level 1
MAX_ALIASES = 20
MAX_TOKENS = 4000

# Built once: validation results are cached per (document, rules), so the rule classes must
# be the same objects on every request.
VALIDATION_RULES = (depth_rule(MAX_DEPTH - 1, None), alias_rule(MAX_ALIASES))


@dataclass
class RequestLimits:
    """The limits of one request (the service's, or an organization's lower ones) and the
    objects read so far."""

    max_cost: int
    max_nodes: int
    seconds: float
    nodes: int = field(default=0)

    def charge(self, count: int) -> None:
        """Counts objects as pages and relations are read, as the cost model counts them
        (a connection, each edge and node, each related object): the actual cost reported
        in ``extensions.cost``, and the second line of defence behind the estimate."""
        self.nodes += count
        if self.nodes > self.max_nodes:
            raise QueryTooComplex(
                f"The response would hold more than {self.max_nodes} objects; ask for fewer "
                "items or fewer nested connections."
            )


def limits_of(context: Any) -> RequestLimits | None:
    return getattr(context, "limits", None)


def _refused(message: str) -> GraphQLExecutionResult:
    return GraphQLExecutionResult(
        data=None, errors=[GraphQLError(message, original_error=QueryTooComplex(message))]
    )


class DocumentLimits(SchemaExtension):
    """The document's size limits (tokens, depth, aliases; Strawberry's own rules), with
    parsing cached per document text and validation per parsed document: one extension, so
    a request pays for one set of hooks. (Strawberry's ``ValidationCache`` keys its cache by
    the document's structure, hashing and comparing the whole tree on every request; the
    parse cache hands out one document object per text, so its identity is the key here.)"""

    # Two hooks, not three: each hook costs every request a context manager Strawberry
    # builds anew, so the limits are set where they are used (parsing, validation).

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.parse_options["max_tokens"] = MAX_TOKENS  # also for Strawberry's parse, if ours fails
        try:
            ctx.graphql_document = parse_document(ctx.query or "", MAX_TOKENS)
        except GraphQLError:
            pass  # Strawberry parses again (same limits) and reports the syntax error
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.validation_rules = ctx.validation_rules + VALIDATION_RULES
        document, rules = ctx.graphql_document, ctx.validation_rules
        key = (id(document), tuple(map(id, rules)))
        hit = _VALIDATED.get(key)
        if hit is not None and hit[0] is document:
            ctx.pre_execution_errors = hit[1]
        else:
            errors = validate_document(ctx.schema._schema, document, rules)
            if len(_VALIDATED) >= MAX_VALIDATED:
                _VALIDATED.pop(next(iter(_VALIDATED)))
            _VALIDATED[key] = (document, errors)
            ctx.pre_execution_errors = errors
        yield


MAX_VALIDATED = 256
_VALIDATED: dict[tuple[int, tuple[int, ...]], tuple[Any, list[GraphQLError]]] = {}


class CostLimit(SchemaExtension):
    """Refuses an operation whose estimated cost exceeds the caller's limit, before it runs,
    and reports ``extensions.cost`` on every response (each event of a subscription: its
    estimate, the objects that event holds, the limit). A subscription's estimate is what
    one event may hold."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = 0
        self.limit = 0

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        limits = limits_of(ctx.context)
        self.limit = limits.max_cost if limits else 0
        try:
            self.requested = estimate_cached(
                ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
            )
        except TooComplex as exc:
            self._refuse(str(exc))
        else:
            if limits and self.requested > limits.max_cost:
                self._refuse(
                    f"This operation's estimated cost is {self.requested}, above the limit of "
                    f"{limits.max_cost}: ask for fewer items (a smaller first) or fewer nested "
                    "connections. Each object in the response costs 1 and a connection's first "
                    "multiplies what is selected under it."
                )
        yield

    def _refuse(self, message: str) -> None:
        ctx = self.execution_context
        if ctx.operation_type is StrawberryOperationType.SUBSCRIPTION:
            # A preset result does not stop a subscription from starting: an error does.
            raise QueryTooComplex(message)
        ctx.result = _refused(message)

    def get_results(self) -> dict[str, Any]:
        limits = limits_of(self.execution_context.context)
        if not self.limit:  # refused before execution: still say what the limit is
            self.limit = limits.max_cost if limits else 0
        actual = limits.nodes if limits else 0
        return {
            "cost": {
                "requestedQueryCost": self.requested,
                "actualQueryCost": actual,
                "maximumQueryCost": self.limit,
            }
        }


def is_read(query: str | None, operation_name: str | None) -> bool:
    """Queries (and documents that fail to parse) get the time budget; mutations always run
    to completion, because interrupting a domain operation between two writes would leave
    half of it behind on a real database, where a cancelled write may still have landed."""
    if not query:
        return True
    try:
        document = parse_document(query, MAX_TOKENS)
    except GraphQLError:
        return True
    operation = get_operation_ast(document, operation_name)
    return not (
        isinstance(operation, OperationDefinitionNode)
        and operation.operation is OperationType.MUTATION
    )


async def within_budget(seconds: float | None, run: Awaitable[T]) -> T | None:
    """Awaits ``run`` within ``seconds``; ``None`` when the budget ran out (a TimeoutError
    raised by ``run`` itself is not the budget and propagates)."""
    budget = asyncio.timeout(seconds)
    try:
        async with budget:
            return await run
    except TimeoutError:
        if budget.expired():
            return None
        raise
