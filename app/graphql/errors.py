"""Every GraphQL error leaves with one of the contract's codes.

Errors raised on purpose (``AppError``) keep their message and code. Problems with the query
document are ``BAD_USER_INPUT``, or ``QUERY_TOO_COMPLEX`` when a limit refused it. Anything
else is a bug: it is logged with the request id and the caller gets ``INTERNAL`` with a
generic message and that id, never the exception's text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.platform.errors import AppError, ErrorCode

log = logging.getLogger("app.graphql")

_LIMIT_MESSAGES = (
    re.compile(r"exceeds maximum operation depth"),
    re.compile(r"aliases found\. Allowed:"),
    re.compile(r"Document contains more than \d+ tokens"),
    re.compile(r"Maximum introspection depth exceeded"),
)


def classify(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    if isinstance(original, AppError):
        return _with(error, original.message, {"code": str(original.code), **original.details})
    if original is None or not error.path:
        # Parsing, validation and variable coercion happen before execution (no path): the
        # document or the variables were wrong, whatever exception carried it.
        code = ErrorCode.BAD_USER_INPUT
        if any(p.search(error.message) for p in _LIMIT_MESSAGES):
            code = ErrorCode.QUERY_TOO_COMPLEX
        return _with(error, error.message, {"code": str(code)})
    log.error(
        "unexpected error in request %s at %s",
        request_id,
        ".".join(map(str, error.path or [])),
        exc_info=(type(original), original, original.__traceback__),
    )
    return _with(
        error,
        f"Internal error; quote request id {request_id} when reporting it.",
        {"code": str(ErrorCode.INTERNAL), "requestId": request_id},
    )


def _with(error: GraphQLError, message: str, extensions: dict) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            context = self.execution_context.context
            request_id = getattr(context, "request_id", "-")
            result.errors = [classify(e, request_id) for e in result.errors]
