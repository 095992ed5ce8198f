"""The spec's permission tests over real HTTP, plus transport behaviour."""

from __future__ import annotations

SESSIONS = """{ sessions(first: 100) { totalCount edges { node {
  id teacherId studentId guardianId paymentId entitlementId guardianNotes teacherNotes
  reportContent status } } } }"""


def _nodes(body):
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["sessions"]["edges"]]


async def test_teacher_sees_only_own_sessions_without_payment_fields(api):
    nodes = _nodes(await api.gql(SESSIONS, role="teacher"))
    assert [n["id"] for n in nodes] == [api.world.ids["X1"]]
    node = nodes[0]
    for hidden in ("paymentId", "entitlementId", "guardianId", "guardianNotes"):
        assert node[hidden] is None
    assert node["teacherNotes"] == "teacher-only note" and node["status"] == "SCHEDULED"


async def test_guardian_sees_only_their_students_sessions_without_teacher_fields(api):
    body = await api.gql(SESSIONS, role="guardian")
    nodes = _nodes(body)
    assert [n["id"] for n in nodes] == [api.world.ids["X1"]]
    assert body["data"]["sessions"]["totalCount"] == 1
    assert nodes[0]["teacherNotes"] is None and nodes[0]["reportContent"] is None
    assert nodes[0]["guardianNotes"] == "guardian note"
    other = await api.gql(SESSIONS, token=api.token("u-g2", "guardian"))
    assert [n["id"] for n in _nodes(other)] == [api.world.ids["X2"]]
