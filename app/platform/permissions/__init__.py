"""The permission engine: policies, scope rules and field masks, all data per organization."""

from app.platform.permissions.access import Access, load_access
from app.platform.permissions.models import (
    Action,
    FieldMatch,
    Policy,
    ReadMask,
    ReferencedBy,
    Related,
    RoleDefinition,
    ScopeAll,
    ScopeRule,
    VisibleWhen,
    WriteMask,
)
from app.platform.permissions.repository import RoleRepository

__all__ = [
    "Access",
    "Action",
    "FieldMatch",
    "Policy",
    "ReadMask",
    "ReferencedBy",
    "Related",
    "RoleDefinition",
    "RoleRepository",
    "ScopeAll",
    "ScopeRule",
    "VisibleWhen",
    "WriteMask",
    "load_access",
]
