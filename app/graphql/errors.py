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
from typing import Any

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


# Pre-execution input errors from graphql-core, turned into the same ``fields`` shape domain
# errors carry ({field path: what is wrong}), so a form can show every error by its field.
_FIELD_MESSAGES = (
    re.compile(r"^Variable '\$\w+' has invalid value at \.(?P<field>[\w.\[\]]+): (?P<reason>.+)$"),
    re.compile(r"^Variable '\$(?P<field>\w+)' (?P<reason>.+)$"),
    re.compile(
        r"^Expected value of type '[^']+' to include (?P<reason>required) field '(?P<field>\w+)'"
    ),
    re.compile(r"^Field '(?P<field>\w+)' is (?P<reason>not defined) by type '[^']+'"),
)


_REASONS = {"required": "is required", "not defined": "is not a field of this input"}


def _fields_of(message: str) -> dict[str, str] | None:
    for pattern in _FIELD_MESSAGES:
        match = pattern.match(message)
        if match:
            reason = match["reason"]
            return {match["field"]: _REASONS.get(reason, reason)}
    return None


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
        extensions: dict = {"code": str(code)}
        fields = _fields_of(error.message) if code is ErrorCode.BAD_USER_INPUT else None
        if fields:
            extensions["fields"] = fields
        return _with(error, error.message, extensions)
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
        self._streamed = False
        yield
        if not self._streamed:  # a subscription's results were classified one by one
            self._classify(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result of a subscription, before it is sent."""
        self._streamed = True
        self._classify(result)
        yield

    def _classify(self, result: Any) -> None:
        if result is not None and getattr(result, "errors", None):
            context = self.execution_context.context
            request_id = getattr(context, "request_id", "-")
            result.errors = [classify(e, request_id) for e in result.errors]
