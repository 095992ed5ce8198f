"""The tutoring pack's error kinds, with the contract's codes."""

from __future__ import annotations

from app.platform.errors import AppError, ErrorCode


class SchedulingRule(AppError):
    code = ErrorCode.SCHEDULING_RULE


class InsufficientCredits(AppError):
    code = ErrorCode.INSUFFICIENT_CREDITS


class InvalidTransition(AppError):
    code = ErrorCode.INVALID_TRANSITION
