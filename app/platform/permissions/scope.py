"""Scope rules compiled twice from one definition: into a MongoDB filter that the store query
carries (so counts and pages are right), and into a predicate over a loaded document (so the
service can tell which of an actor's roles reach a given document and mask it accordingly).
The two are built side by side from the same rule. Where they could still disagree, the
engine fails closed: rules over fields the type lacks (dotted paths included) match nothing,
equality is type-strict as in MongoDB, and a document the filter returns but no predicate
admits is dropped rather than shown.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.platform.actor import Actor
from app.platform.permissions.models import FieldMatch, ReferencedBy, Related, ScopeAll, ScopeRule

MISSING: Any = object()
_EMPTY: dict[str, Any] = {}
Predicate = Callable[[Mapping[str, Any]], bool]


def doc_path(field: str) -> str:
    """Where an entity field lives in a stored document."""
    return "_id" if field == "id" else f"data.{field}"


def doc_value(doc: Mapping[str, Any], field: str) -> Any:
    if field == "id":
        return doc.get("_id", MISSING)
    return doc.get("data", {}).get(field, MISSING)


def _same(actual: Any, expected: Any) -> bool:
    # MongoDB does not equate True with 1 the way Python does.
    return isinstance(actual, bool) is isinstance(expected, bool) and actual == expected


def _equals(actual: Any, expected: Any) -> bool:
    # MongoDB's equality also matches an array that contains the value.
    if actual is MISSING:
        return False
    if isinstance(actual, list) and not isinstance(expected, list):
        return any(_same(item, expected) for item in actual)
    return _same(actual, expected)


@dataclass(frozen=True)
class Scope:
    """A set of documents, as a filter (None = no restriction) and as a predicate."""

    filter: dict[str, Any] | None
    predicate: Predicate
    empty: bool = False

    @classmethod
    def everything(cls) -> Scope:
        return cls(None, lambda _doc: True)

    @classmethod
    def nothing(cls) -> Scope:
        return cls({"_id": {"$in": []}}, lambda _doc: False, empty=True)

    @classmethod
    def all_of(cls, scopes: Sequence[Scope]) -> Scope:
        if any(s.empty for s in scopes):
            return cls.nothing()
        if len(scopes) == 1:  # the usual single rule: no wrapper to call for every document
            return scopes[0]
        filters = [s.filter for s in scopes if s.filter is not None]
        preds = [s.predicate for s in scopes]
        combined = None if not filters else filters[0] if len(filters) == 1 else {"$and": filters}
        return cls(combined, lambda doc: all(p(doc) for p in preds))

    @classmethod
    def any_of(cls, scopes: Sequence[Scope]) -> Scope:
        live = [s for s in scopes if not s.empty]
        if not live:
            return cls.nothing()
        if any(s.filter is None for s in live):
            return cls.everything()
        if len(live) == 1:
            return live[0]
        preds = [s.predicate for s in live]
        combined = live[0].filter if len(live) == 1 else {"$or": [s.filter for s in live]}
        return cls(combined, lambda doc: any(p(doc) for p in preds))


def compile_field_match(rule: FieldMatch, actor: Actor) -> Scope:
    path = doc_path(rule.field)
    if rule.operator == "exists":
        source = rule.value if rule.value_path is None else actor.value(rule.value_path)
        if source is None:
            return Scope.nothing()  # an unlinked actor matches nothing, as for every operator
        want = bool(source)
        return Scope(
            {path: {"$exists": want}},
            lambda doc: (doc_value(doc, rule.field) is not MISSING) == want,
        )
    value = rule.value if rule.value_path is None else actor.value(rule.value_path)
    if value is None:
        # An actor without the linked entity matches nothing; in MongoDB ``{f: None}`` would
        # match every document that lacks the field, which must never widen a scope.
        return Scope.nothing()
    if rule.operator == "eq":
        if isinstance(value, str) and rule.field != "id":
            # The common rule (an id the actor is linked to): a string stored under data.
            field = rule.field

            def same_id(doc: Mapping[str, Any]) -> bool:
                actual = doc.get("data", _EMPTY).get(field, MISSING)
                return actual == value if type(actual) is str else _equals(actual, value)

            return Scope({path: value}, same_id)
        return Scope({path: value}, lambda doc: _equals(doc_value(doc, rule.field), value))
    if rule.operator == "ne":
        return Scope(
            {path: {"$ne": value}}, lambda doc: not _equals(doc_value(doc, rule.field), value)
        )
    values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
    if rule.operator == "in":
        return Scope(
            {path: {"$in": values}},
            lambda doc: any(_equals(doc_value(doc, rule.field), v) for v in values),
        )
    return Scope(
        {path: {"$nin": values}},
        lambda doc: not any(_equals(doc_value(doc, rule.field), v) for v in values),
    )


def scope_from_ids(field: str, ids: Collection[Any]) -> Scope:
    """In scope when ``field`` (or an element of it) is one of ``ids``."""
    if not ids:
        return Scope.nothing()
    id_set = frozenset(ids)
    return Scope(
        {doc_path(field): {"$in": sorted(id_set)}},
        lambda doc: (
            any(v in id_set for v in value)
            if isinstance(value := doc_value(doc, field), list)
            else value in id_set
        ),
    )


__all__ = [
    "MISSING",
    "FieldMatch",
    "ReferencedBy",
    "Related",
    "Scope",
    "ScopeAll",
    "ScopeRule",
    "compile_field_match",
    "doc_path",
    "doc_value",
    "scope_from_ids",
]
