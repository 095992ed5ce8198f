"""The tutoring pack as the platform installs it."""

from __future__ import annotations

from app.platform.packs import Pack
from app.tutoring.agent.loop import CONVERSATION_INDEXES
from app.tutoring.entity_types import ENTITY_TYPES
from app.tutoring.roles import ROLES

TUTORING_PACK = Pack(
    slug="tutoring",
    version="1",
    entity_types=ENTITY_TYPES,
    roles=ROLES,
    extra_indexes=CONVERSATION_INDEXES,
)

PACKS: dict[str, Pack] = {TUTORING_PACK.slug: TUTORING_PACK}
