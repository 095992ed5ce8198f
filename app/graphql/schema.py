"""The schema, with the query limits, caches and error codes every operation goes through."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult

from app.graphql.admin import AdminMutation, AdminQuery
from app.graphql.agent import AgentMutation, AgentQuery
from app.graphql.errors import ErrorCodes
from app.graphql.limits import (
    CostLimit,
    DocumentLimits,
    is_read,
    limits_of,
    within_budget,
)
from app.graphql.messages import MessagesQuery
from app.graphql.metrics import OperationMetrics
from app.graphql.mutations import CoreMutation
from app.graphql.payments import PaymentMutation
from app.graphql.queries import CoreQuery
from app.graphql.scheduling import SchedulingMutation, SchedulingQuery
from app.graphql.subscriptions import LiveSubscription
from app.graphql.types.base import skip_type_checks
from app.graphql.types.entities import NODE_TYPES
from app.platform.errors import QueryTooComplex

Query = merge_types("Query", (CoreQuery, SchedulingQuery, AdminQuery, AgentQuery, MessagesQuery))
Mutation = merge_types(
    "Mutation",
    (CoreMutation, SchedulingMutation, PaymentMutation, AdminMutation, AgentMutation),
)
Subscription = merge_types("Subscription", (LiveSubscription,))


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """Logged by ``ErrorCodes`` when unexpected; expected errors are not noise."""

    async def execute(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> ExecutionResult:
        """Reads run within the caller's time budget (see ``limits.is_read``)."""
        limits = limits_of(context_value)
        operation_name = kwargs.get("operation_name")
        seconds = limits.seconds if limits and is_read(query, operation_name) else None
        run = super().execute(query, variable_values, context_value, *args, **kwargs)
        result = await within_budget(seconds, run)
        if result is not None:
            return result
        message = (
            f"The operation took longer than its {seconds:g} s budget and was stopped; ask "
            "for fewer items or split it into smaller operations."
        )
        error = GraphQLError(message, extensions={"code": str(QueryTooComplex.code)})
        return ExecutionResult(data=None, errors=[error], extensions={})


schema = _Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        OperationMetrics,  # first, so that it leaves last and sees the final error codes
        DocumentLimits,
        CostLimit,
        ErrorCodes,
    ],
)
skip_type_checks(schema, NODE_TYPES.values())  # the entity_object classes


def export_sdl() -> str:
    return schema.as_str() + "\n"
