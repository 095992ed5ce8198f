"""The contract's error codes as a GraphQL enum, for fields that report one (a tool call's
outcome). Built from ``app.platform.errors.ErrorCode``, so the two never drift apart."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.platform.errors import ErrorCode as PlatformErrorCode

ErrorCode = strawberry.enum(
    Enum("ErrorCode", {c.name: c.value for c in PlatformErrorCode}),  # type: ignore[misc]
    description="The contract's error codes (errors[].extensions.code).",
)
