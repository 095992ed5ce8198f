"""Strawberry field extensions that apply the permission engine in the schema.

``Scoped`` sits on root and relation fields: it checks the role's policy for the type and
resolves the actor's scope (including relational look-ups) before the resolver's store query
runs, so that query carries the scope. ``Masked`` sits on every maskable field and returns
null for a field the role may not see. The decisions themselves live in the pack's roles;
these classes only ask the engine.
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


class Masked(FieldExtension):
    def __init__(self, name: str) -> None:
        self.name = name

    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs) if source.entity.can_see(self.name) else None

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        if not source.entity.can_see(self.name):
            return None
        return await next_(source, info, **kwargs)
