"""The agent's system prompt: the spec's template, rendered in the sandbox as the user."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.platform.entities import ActorEntities
from app.platform.permissions import Action
from app.platform.templates import DataSource, render
from app.tutoring.agent.tools import as_json
from app.tutoring.agent.values import stored_filters
from app.tutoring.roles import SETTINGS_RESOURCE
from app.tutoring.settings import load_settings

DEFAULT_TEMPLATE = """You are a tutoring operations assistant for {{ org.name }}.

Your role is to help schedule sessions, answer questions, and assist with operational tasks.

## Current Context

Today's date: {{ datetime }}

## Upcoming Sessions

{{ entity.query("session", {"status": "scheduled"}) | formatSessionList }}

## Available Tools

- entity.query: Search for sessions, students, teachers
- entity.create: Create teachers, students, guardians (sessions are booked with session.book)
- entity.update: Update session details, submit reports
- session.book, session.reschedule, session.cancel, session.start, session.complete,
  session.mark_no_show, session.retry_payment, scheduling.available_slots
- payment.record_succeeded, payment.record_failed (admins)

## Important Rules

1. Sessions must be booked at least {{ rules.leadHours }} hours in advance
2. Teachers can only be booked during their available hours
3. Pack credits must be available before scheduling
4. Always confirm availability before booking
"""


FILTERS = {"formatSessionList": "app.tutoring.agent.prompt_filters:format_session_list"}


class EntityQueries(DataSource):
    """``entity.query(type, filters, limit)`` inside templates: scoped and masked as the
    user, like every other read. It runs in the server, not in the template's worker."""

    template_methods = frozenset({"query"})

    def __init__(self, entities: ActorEntities) -> None:
        self._entities = entities

    async def query(
        self, type: str, filters: Mapping[str, Any] | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        if not self._entities.access.allows(type, Action.LIST):
            return []  # a prompt shows what the user may list; nothing else is an error
        where = stored_filters(type, filters)
        page = await self._entities.query(type, where=where, first=min(int(limit), 100))
        return [as_json(e) or {} for e in page.items]


async def render_prompt(entities: ActorEntities, template: str | None = None) -> str:
    """The prompt as ``entities``' user. A custom template is code: only roles that may change
    the organization's settings (admins) may render one."""
    if template is not None:
        entities.access.require_resource(SETTINGS_RESOURCE, Action.UPDATE)
    org = entities.actor.organization_id
    settings = await load_settings(entities.service.store, org)
    context = {
        "org": {"name": settings.organizationName or org},
        "datetime": entities.service.clock().isoformat(),
        "entity": EntityQueries(entities),
        "rules": {"leadHours": settings.minBookingLeadMinutes / 60},
    }
    return await render(template or DEFAULT_TEMPLATE, context, filters=FILTERS)
