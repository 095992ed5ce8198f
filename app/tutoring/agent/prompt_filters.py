"""Filters for the agent's prompt template.

Kept apart from ``prompt`` with no imports of the app, because template workers import it:
a light module keeps a fresh worker's start fast and small. Filters receive JSON data (a
date-time is an ISO string by the time it gets here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_session_list(sessions: list[Mapping[str, Any]]) -> str:
    if not sessions:
        return "(none)"
    lines = []
    for s in sessions:
        when = s.get("startTime")
        when = when.isoformat() if hasattr(when, "isoformat") else when
        parts = [
            f"- {when}",
            f"{s.get('duration')} min" if s.get("duration") else None,
            s.get("subject"),
            f"status {s.get('status')}" if s.get("status") else None,
        ]
        lines.append(", ".join(str(p) for p in parts if p))
    return "\n".join(lines)
