"""Errors with a stable, public code.

Every error a caller can see carries one of the contract's codes, so transports only have to
translate an ``AppError`` into their own envelope (GraphQL ``extensions.code``, a tool result,
an MCP error) and never decide what went wrong themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    SCHEDULING_RULE = "SCHEDULING_RULE"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    RATE_LIMITED = "RATE_LIMITED"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    INTERNAL = "INTERNAL"


class AppError(Exception):
    """An error whose message is safe to show and tells the caller what to do differently."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, **self.details}


class Unauthenticated(AppError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(AppError):
    code = ErrorCode.FORBIDDEN


class NotFound(AppError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, entity_type: str, entity_id: str) -> None:
        # Same text whether the entity is absent or outside the caller's scope.
        super().__init__(
            f"No {entity_type} with id {entity_id!r}.",
            details={"entityType": entity_type, "id": entity_id},
        )


class BadUserInput(AppError):
    """Invalid input; ``fields`` maps each failing field to what is wrong with it."""

    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message, details={"fields": dict(fields or {})} if fields else None)
        self.fields = dict(fields or {})


class Conflict(AppError):
    code = ErrorCode.CONFLICT


class QueryTooComplex(AppError):
    """An operation over a cost, depth, size, node or time limit: ask for less."""

    code = ErrorCode.QUERY_TOO_COMPLEX


class RateLimited(AppError):
    """Too many requests in a window; ``retry_after`` seconds until the next one may pass."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, details={"retryAfter": retry_after})
        self.retry_after = retry_after


class PersistedQueryNotFound(AppError):
    """A document asked for by its hash alone that the server does not hold: send it once
    with its text. The message is the one Apollo clients look for to do exactly that."""

    code = ErrorCode.PERSISTED_QUERY_NOT_FOUND

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")
