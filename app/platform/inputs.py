"""What every transport checks about untrusted JSON before any of it reaches a rule or a store.

JSON parsers accept more than the service can keep: Python's ``json`` reads ``NaN`` and
``Infinity``, and a ``\\ud800`` escape decodes to a lone UTF-16 surrogate that no UTF-8
encoder (BSON, the JSON response, a log line) can write. Left in, they surface later as an
``INTERNAL`` error on every read of the field. GraphQL bodies, agent tool arguments and MCP
calls all pass through ``check_json`` first, so such input is ``BAD_USER_INPUT`` at the door.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.platform.errors import BadUserInput

MAX_DEPTH = 64


def _path(parts: list[str | int]) -> str:
    return ".".join(map(str, parts)) or "(value)"


def _valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_json(value: Any, *, max_depth: int = MAX_DEPTH, name: str = "") -> None:
    """Raises ``BadUserInput`` naming the first bad place: a string (or key) that is not
    valid Unicode, a number that is not finite, or nesting deeper than ``max_depth``."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [name] if name else [])]
    while stack:
        item, path = stack.pop()
        if len(path) > max_depth:
            raise BadUserInput(
                f"The input nests deeper than {max_depth} levels.", {_path(path[:3]): "too deep"}
            )
        if isinstance(item, str):
            if not _valid_text(item):
                raise BadUserInput(
                    "A string is not valid Unicode (it holds a lone UTF-16 surrogate).",
                    {_path(path): "invalid Unicode"},
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadUserInput(
                    "Numbers must be finite (no NaN or Infinity).", {_path(path): "not finite"}
                )
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not _valid_text(key):
                    raise BadUserInput(
                        "A key is not valid Unicode (it holds a lone UTF-16 surrogate).",
                        {_path(path): "invalid Unicode"},
                    )
                stack.append((child, [*path, str(key)]))
        elif isinstance(item, list | tuple):
            stack.extend((child, [*path, i]) for i, child in enumerate(item))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number the service accepts")


def loads(data: str | bytes) -> Any:
    """``json.loads`` that refuses NaN/Infinity, bad UTF-8, lone surrogates and deep nesting,
    always as ``BadUserInput`` (never a RecursionError or a later encoding failure)."""
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except RecursionError:
        raise BadUserInput(
            f"The JSON body nests deeper than {MAX_DEPTH} levels.", {"body": "too deep"}
        ) from None
    except UnicodeDecodeError:
        raise BadUserInput("The body is not valid UTF-8.", {"body": "invalid UTF-8"}) from None
    except ValueError as exc:
        raise BadUserInput(
            f"The body is not valid JSON: {exc}.", {"body": "invalid JSON"}
        ) from None
    check_json(value)
    return value


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def utc_datetime(value: datetime, name: str) -> datetime:
    """``value`` in UTC, or ``BadUserInput``: it needs an offset and must lie in 1900-2199.
    Dates far outside that break arithmetic later (year 1 at +14:00 cannot even be
    converted to UTC), long after the request that stored them was answered."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadUserInput(f"{name} needs a UTC offset.", {name: "naive date-time"})
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise BadUserInput(
            f"{name} must lie between {EARLIEST.year} and {LATEST.year - 1}.",
            {name: "out of range"},
        )
    return utc


MAX_ZONE_NAME = 64


def time_zone(name: str, field: str = "tz") -> ZoneInfo:
    """The IANA time zone a client named (``Europe/Berlin``, ``UTC``), or ``BadUserInput``
    naming ``field``. ``ZoneInfo`` keeps the zones it loaded, so naming one again is a
    dictionary look-up."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_ZONE_NAME:
        raise BadUserInput(
            f"{field} must be an IANA time zone name such as Europe/Berlin.",
            {field: "not a time zone name"},
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadUserInput(
            f"{field} {name!r} is not a known IANA time zone; use a name such as "
            "Europe/Berlin or America/New_York.",
            {field: "unknown time zone"},
        ) from None
