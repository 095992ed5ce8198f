"""The schema, with Strawberry's own query limits and our error codes."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

from app.graphql.agent import AgentMutation, AgentQuery
from app.graphql.errors import ErrorCodes
from app.graphql.mutations import CoreMutation
from app.graphql.queries import CoreQuery
from app.graphql.scheduling import JobsQuery, SchedulingMutation, SchedulingQuery

MAX_DEPTH = 12
MAX_ALIASES = 20
MAX_TOKENS = 4000


Query = merge_types("Query", (CoreQuery, SchedulingQuery, JobsQuery, AgentQuery))
Mutation = merge_types("Mutation", (CoreMutation, SchedulingMutation, AgentMutation))


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """Logged by ``ErrorCodes`` when unexpected; expected errors are not noise."""


schema = _Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        ErrorCodes,
    ],
)


def export_sdl() -> str:
    return schema.as_str() + "\n"
