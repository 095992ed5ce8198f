"""The rule the whole suite's queries are checked against (``conftest.pytest_sessionfinish``
fails the run naming every query shape no declared index serves)."""

from __future__ import annotations

from app.platform.packs import all_indexes
from app.platform.store import IndexSpec
from app.platform.store.shapes import shapes, uncovered
from app.tutoring.pack import PACKS

SESSIONS_BY_TEACHER = IndexSpec(
    "entities",
    (("organizationId", 1), ("type", 1), ("data.teacherId", 1), ("data.startTime", 1)),
)


def _missing(filter, sort=None, indexes=(SESSIONS_BY_TEACHER,)):
    return uncovered(shapes("entities", {"organizationId": "o", **filter}, sort), indexes)


def test_equality_first_then_sort_as_esr_says():
    page = {"type": "session", "data.teacherId": "t"}
    assert _missing(page, [("data.startTime", 1), ("_id", 1)]) == []
    # Further equalities and ranges filter what the index found.
    assert _missing({**page, "data.status": "scheduled"}, [("data.startTime", 1)]) == []
    # A sort the index does not hold after the equalities would sort in memory.
    (missing,) = _missing(page, [("createdAt", 1)])
    assert str(missing) == "entities: eq(data.teacherId, organizationId, type) sort(createdAt)"
    # Without the selective field in the lead, the query would read every session.
    assert _missing({"type": "session"}, [("data.startTime", 1)]) != []


def test_or_branches_each_need_an_index_and_ids_are_always_served():
    by_student = IndexSpec(
        "entities", (("organizationId", 1), ("type", 1), ("data.studentId", 1), ("createdAt", 1))
    )
    either = {"type": "session", "$or": [{"data.teacherId": "t"}, {"data.studentId": "s"}]}
    order = [("data.startTime", 1)]
    assert [str(s) for s in _missing(either, order, (SESSIONS_BY_TEACHER, by_student))] == [
        "entities: eq(data.studentId, organizationId, type) sort(data.startTime)"
    ]
    assert _missing({"type": "student", "_id": {"$in": ["a", "b"]}, "data.x": 1}) == []


def test_the_services_own_patterns_are_declared():
    indexes = all_indexes(list(PACKS.values()))
    teacher_page = shapes(
        "entities",
        {"organizationId": "o", "type": "session", "data.teacherId": "t"},
        [("data.startTime", 1), ("_id", 1)],
    )
    relation = shapes(
        "entities",
        {"organizationId": "o", "type": "student", "data.guardianId": "g"},
        [("createdAt", 1), ("_id", 1)],
    )
    due_jobs = shapes("jobs", {"organizationId": "o", "status": {"$in": ["pending"]}})
    assert uncovered([*teacher_page, *relation, *due_jobs], indexes) == []
