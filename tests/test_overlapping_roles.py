"""A user who holds several roles: filters the system issues on their behalf are not theirs.

Following a relation (``Guardian.students``, ``Student.sessions``) filters the child type by
its link to a parent the caller has already read. That filter is the system's, not the
caller's: it must work for a teacher who is also a guardian (whose teacher role cannot see
``Student.guardianId``), while a filter the caller types is still judged by the rule that
filters use only fields every listing role can see.
"""

from __future__ import annotations

import pytest

from app.platform.permissions import Policy, ReadMask, RoleDefinition, ScopeAll

ME_STUDENTS = "{ me { guardian { id students { totalCount edges { node { id name } } } } } }"


@pytest.fixture
async def both(api):
    """Teacher T1's login is also linked to guardian G2 (whose child S2 T2 teaches)."""
    world = api.world
    admin = await world.as_role("admin")
    await admin.update("guardian", world.ids["G2"], {"userId": "u-t1"})
    return api.token("u-t1", "teacher", "guardian")


def _codes(body: dict) -> set[str]:
    return {e["extensions"]["code"] for e in body.get("errors", [])}


async def test_teacher_who_is_also_a_guardian_lists_their_children(api, both):
    body = await api.gql(ME_STUDENTS, token=both)
    assert "errors" not in body, body
    students = body["data"]["me"]["guardian"]["students"]
    assert students["totalCount"] == 1
    assert [e["node"]["id"] for e in students["edges"]] == [api.world.ids["S2"]]
    assert students["edges"][0]["node"]["name"] == "S2"


async def test_their_childrens_sessions_show_as_a_guardian_sees_them(api, both):
    """Student.sessions follows studentId (which both roles see); T2 teaches S2, so the
    session shows with the guardian's mask only."""
    body = await api.gql(
        "{ me { guardian { students { edges { node { sessions { totalCount edges { node {"
        " id guardianNotes teacherNotes } } } } } } } } }",
        token=both,
    )
    assert "errors" not in body, body
    (child,) = body["data"]["me"]["guardian"]["students"]["edges"]
    sessions = child["node"]["sessions"]
    assert sessions["totalCount"] == 1
    node = sessions["edges"][0]["node"]
    assert node == {
        "id": api.world.ids["X2"],
        "guardianNotes": "guardian note",
        "teacherNotes": None,
    }


async def test_a_filter_the_caller_types_still_obeys_the_listing_rule(api, both):
    """guardianId is hidden from the teacher role, so filtering students by it would tell the
    teacher whose child a pupil is: FORBIDDEN, as before."""
    body = await api.gql(
        "query($g: ID!) { students(filter: {guardianId: $g}) { totalCount } }",
        {"g": api.world.ids["G2"]},
        token=both,
    )
    assert _codes(body) == {"FORBIDDEN"}, body
    assert "guardianId" in body["errors"][0]["message"]


async def test_either_role_alone_is_unchanged(api):
    guardian = api.token("u-g2", "guardian")
    body = await api.gql(ME_STUDENTS, token=guardian)
    assert body["data"]["me"]["guardian"]["students"]["totalCount"] == 1
    teacher = await api.gql(
        "{ sessions { edges { node { student { sessions { totalCount } } } } } }", role="teacher"
    )
    assert "errors" not in teacher, teacher
    (edge,) = teacher["data"]["sessions"]["edges"]
    assert edge["node"]["student"]["sessions"]["totalCount"] == 1


async def test_a_relation_never_reveals_a_link_the_role_hides(api):
    """A custom role that reads guardians and lists students but hides Student.guardianId:
    following Guardian.students would tell it whose child each pupil is, so it reaches no
    child that way (its other roles' children would still show)."""
    world = api.world
    await world.service.roles.replace(
        world.org,
        RoleDefinition(
            name="frontdesk",
            policies=(Policy(resource="*", action="list", effect="allow"),
                      Policy(resource="*", action="read", effect="allow")),
            scopes={"*": (ScopeAll(),)},
            readMasks={"guardian": ReadMask(mode="whitelist", fields=("name",)),
                       "student": ReadMask(mode="whitelist", fields=("name",))},
        ),
    )  # fmt: skip
    token = api.token("u-desk", "frontdesk")
    body = await api.gql(
        "query($id: ID!) { guardian(id: $id) { name students { totalCount } } }",
        {"id": world.ids["G1"]},
        token=token,
    )
    assert body["data"]["guardian"] == {"name": "G1", "students": {"totalCount": 0}}, body
    # Listing students directly still works, without their guardians.
    listed = await api.gql("{ students { totalCount edges { node { guardianId } } } }", token=token)
    assert listed["data"]["students"]["totalCount"] == 3
    assert {e["node"]["guardianId"] for e in listed["data"]["students"]["edges"]} == {None}
