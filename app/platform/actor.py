"""Who is acting: a signed-in user, or the explicit system actor used by jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SYSTEM_ROLE = "system"


@dataclass(frozen=True)
class Actor:
    """The caller of every secure operation.

    ``links`` holds the ids of entities bound to this user in this organization, keyed by
    the name a pack gives them (the tutoring pack uses ``teacherId`` and ``guardianId``);
    scope rules read them through ``valuePath``s such as ``actor.teacherId``.
    """

    user_id: str
    organization_id: str
    roles: frozenset[str]
    links: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    is_system: bool = False
    # For a system actor doing a user's domain operation: the user it acts for (audited).
    on_behalf_of: str | None = None

    @classmethod
    def system(cls, organization_id: str, purpose: str) -> Actor:
        """A non-human actor for jobs; audited under ``system:<purpose>``."""
        return cls(
            user_id=f"system:{purpose}",
            organization_id=organization_id,
            roles=frozenset({SYSTEM_ROLE}),
            is_system=True,
        )

    def acting_for(self, purpose: str) -> Actor:
        """The system actor that carries out the consequences of this user's request (a
        guardian booking creates a payment they may not create directly). Rules and scope are
        checked as the user before any such write."""
        return Actor(
            user_id=f"{SYSTEM_ROLE}:{purpose}",
            organization_id=self.organization_id,
            roles=frozenset({SYSTEM_ROLE}),
            is_system=True,
            on_behalf_of=self.on_behalf_of if self.is_system else self.user_id,
        )

    def value(self, path: str) -> Any:
        """Resolves ``actor.<name>``; unknown names and unlinked entities resolve to None."""
        if not path.startswith("actor."):
            raise ValueError(f"value path must start with 'actor.': {path!r}")
        name = path.removeprefix("actor.")
        builtin = {"userId": self.user_id, "organizationId": self.organization_id}
        if name in builtin:
            return builtin[name]
        return self.links.get(name)

    def audit_dict(self) -> dict[str, Any]:
        return {
            "userId": self.user_id,
            "roles": sorted(self.roles),
            "system": self.is_system,
            **({"onBehalfOf": self.on_behalf_of} if self.on_behalf_of else {}),
            **{k: v for k, v in self.links.items()},
        }
