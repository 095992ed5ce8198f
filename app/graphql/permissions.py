"""Strawberry field extensions that apply the permission engine in the schema.

``Scoped`` sits on root fields: it checks the role's policy for the type and resolves the
actor's scope (including relational look-ups) before the resolver's store query runs, so that
query carries the scope. Relations ask ``relation_allowed`` (a field extension on each of
them would cost every row of a page a wrapper call). Fields need no check here: the entity
service hands out entities whose data holds only what the actor's masks show. The decisions
themselves live in the pack's roles; this module only asks the engine.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.types import Info

from app.platform.errors import Forbidden
from app.platform.permissions import Action


class Scoped(FieldExtension):
    def __init__(self, slug: str, action: Action = Action.READ, *, relation: bool = False) -> None:
        self.slug = slug
        self.action = action
        # Following a link into a type the role cannot read gives null, not an error: the
        # same query then works for every role and shows each what it may see.
        self.relation = relation

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        access = info.context.entities.access
        if not access.allows(self.slug, self.action):
            if self.relation:
                return None
            raise Forbidden(f"Your role may not {self.action} {self.slug} entities.")
        await access.scope(self.slug, self.action)  # compiled once, reused by the query
        return await next_(source, info, **kwargs)


def relation_allowed(info: Info, slug: str) -> bool:
    """Following a link into a type the role cannot read gives null, not an error: the same
    query then works for every role and shows each what it may see."""
    return info.context.entities.access.allows(slug, Action.READ)
