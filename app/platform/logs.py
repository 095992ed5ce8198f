"""Structured logs: every line carries its time, level, request id, organization and user.

The ids travel in context variables, bound once per request (by the HTTP layer) or per job
(by the job service), so every log call below them -- the store, a rule, uvicorn's access
line -- is attributable without passing ids around. ``LOG_FORMAT=json`` writes one JSON
object per line for log collectors; ``text`` writes the same fields for people.

Log calls carry ids, codes and counts, never entity data: names, phones, emails and notes
stay out of logs (a test scans the whole suite's logs for them).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
organization_id: ContextVar[str | None] = ContextVar("organization_id", default=None)
user_id: ContextVar[str | None] = ContextVar("user_id", default=None)

# An incoming X-Request-ID is honoured when it looks like an id, not arbitrary text.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s "
    "[req=%(request_id)s org=%(organization_id)s user=%(user_id)s] %(message)s"
)
# Libraries whose INFO lines are noise at our INFO level (arq logs every cron run twice).
QUIET = ("arq.worker", "arq.jobs", "httpx", "httpcore")


def valid_request_id(value: str | None) -> str | None:
    return value if value and _REQUEST_ID.match(value) else None


@contextmanager
def bound(
    *, request: str | None = None, organization: str | None = None, user: str | None = None
) -> Iterator[None]:
    """Binds ids for the code run inside (a request, a job)."""
    tokens = []
    for var, value in ((request_id, request), (organization_id, organization), (user_id, user)):
        if value is not None:
            tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        record.organization_id = organization_id.get() or "-"
        record.user_id = user_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": getattr(record, "request_id", "-"),
            "organizationId": getattr(record, "organization_id", "-"),
            "userId": getattr(record, "user_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """One stderr handler on the root logger (stdout may carry a protocol: MCP)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else _UTCFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
