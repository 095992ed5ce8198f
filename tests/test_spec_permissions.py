"""The spec's permission tests, and one test per hole of the spec's sketch that we close."""

from __future__ import annotations

import pytest

from app.platform.entities import OrderKey
from app.platform.errors import AppError, ErrorCode
from app.platform.permissions import Action
from app.tutoring.settings import set_teacher_rate_hidden, teacher_rate_hidden


async def _ids(entities, slug, **kw):
    return {e.id for e in (await entities.query(slug, first=100, **kw)).items}


# -- the spec's permission tests -----------------------------------------------------------


async def test_teacher_sees_only_own_sessions(world):
    teacher = await world.as_role("teacher")
    assert await _ids(teacher, "session") == {world.ids["X1"]}
    assert await teacher.count("session") == 1
    other = await world.as_user("u-t2", "teacher")
    assert await _ids(other, "session") == {world.ids["X2"]}


async def test_teacher_does_not_see_payment_info(world):
    teacher = await world.as_role("teacher")
    session = await teacher.get("session", world.ids["X1"])
    for hidden in ("paymentId", "entitlementId", "guardianId", "guardianNotes", "cancelledBy"):
        assert hidden not in session.data
        assert session.get(hidden) is None
    assert session.get("teacherNotes") == "teacher-only note"
    # No route to the payment link either: payments are not readable by teachers at all.
    with pytest.raises(AppError) as err:
        await teacher.get("payment", world.ids["P1"])
    assert err.value.code is ErrorCode.FORBIDDEN


async def test_guardian_sees_only_their_students_sessions(world):
    g1 = await world.as_role("guardian")
    assert await _ids(g1, "session") == {world.ids["X1"]}
    session = await g1.get("session", world.ids["X1"])
    assert "teacherNotes" not in session.data and "reportContent" not in session.data
    assert session.get("guardianNotes") == "guardian note"
    g2 = await world.as_user("u-g2", "guardian")
    assert await _ids(g2, "session") == {world.ids["X2"]}


# -- holes closed --------------------------------------------------------------------------


async def test_guardian_reads_and_updates_only_own_guardian_record(world):
    g1 = await world.as_role("guardian")
    assert await _ids(g1, "guardian") == {world.ids["G1"]}
    assert await g1.get("guardian", world.ids["G2"]) is None  # no phone number of G2
    with pytest.raises(AppError) as err:
        await g1.update("guardian", world.ids["G2"], {"phone": "+1 555 6666"})
    assert err.value.code is ErrorCode.NOT_FOUND
    updated = await g1.update("guardian", world.ids["G1"], {"phone": "+1 555 6666"})
    assert updated.get("phone") == "+1 555 6666"


async def test_guardian_sees_only_own_payments_and_entitlements(world):
    g1 = await world.as_role("guardian")
    assert await _ids(g1, "payment") == {world.ids["P1"]}
    assert await _ids(g1, "entitlement") == {world.ids["E1"]}
    assert await g1.get("payment", world.ids["P2"]) is None
    assert await g1.get("entitlement", world.ids["E2"]) is None
    assert await g1.count("payment") == 1


async def test_teacher_reads_only_students_they_have_sessions_with(world):
    t1 = await world.as_role("teacher")
    assert await _ids(t1, "student") == {world.ids["S1"]}  # not S2 (T2's), not S3 (no session)
    assert await t1.get("student", world.ids["S3"]) is None
    student = await t1.get("student", world.ids["S1"])
    assert set(student.data) == {"name", "grade", "subjects"}


async def test_teacher_without_linked_profile_sees_nothing(world):
    """A teacher login not linked to a teacher entity must not match unlinked sessions."""
    stranger = await world.as_user("u-nobody", "teacher")
    assert stranger.actor.links == {}
    assert await _ids(stranger, "session") == set()
    assert await _ids(stranger, "student") == set()
    assert await _ids(stranger, "teacher") == set()


async def test_guardians_never_see_internal_notes_or_compensation(world):
    g1 = await world.as_role("guardian")
    student = await g1.get("student", world.ids["S1"])
    assert "notes" not in student.data
    teacher = await g1.get("teacher", world.ids["T1"])
    assert "hourlyRate" not in teacher.data
    assert set(teacher.data) == {"name", "subjects", "bio"}
    # ...and cannot learn them by filtering or ordering either.
    for call in (
        lambda: g1.query("student", where={"notes": "internal note"}),
        lambda: g1.query("teacher", where={"hourlyRate": {"gt": 10}}),
        lambda: g1.count("teacher", where={"hourlyRate": 40}),
        lambda: g1.query("teacher", order_by=[OrderKey("hourlyRate")]),
    ):
        with pytest.raises(AppError) as err:
            await call()
        assert err.value.code is ErrorCode.FORBIDDEN


async def test_org_setting_hides_hourly_rate_from_teachers_themselves(world):
    t1 = await world.as_role("teacher")
    assert (await t1.get("teacher", world.ids["T1"])).get("hourlyRate") == 40
    admin = await world.as_role("admin")
    assert await teacher_rate_hidden(admin) is False
    assert await set_teacher_rate_hidden(admin, True) is True
    t1 = await world.as_role("teacher")
    me = await t1.get("teacher", world.ids["T1"])
    assert "hourlyRate" not in me.data and "name" in me.data
    assert await set_teacher_rate_hidden(admin, False) is False
    assert (await (await world.as_role("teacher")).get("teacher", world.ids["T1"])).get(
        "hourlyRate"
    ) == 40


async def test_only_admins_change_the_rate_setting(world):
    t1 = await world.as_role("teacher")
    with pytest.raises(AppError) as err:
        await set_teacher_rate_hidden(t1, False)
    assert err.value.code is ErrorCode.FORBIDDEN


async def test_teacher_updates_only_notes_and_report_on_own_sessions(world):
    t1 = await world.as_role("teacher")
    ok = await t1.update(
        "session", world.ids["X1"], {"teacherNotes": "ok", "reportContent": "done"}
    )
    assert ok.get("teacherNotes") == "ok"
    for field, value in (
        ("status", "completed"),
        ("startTime", "2027-01-01T00:00:00+00:00"),
        ("guardianNotes", "x"),
        ("meetingLink", "x"),
    ):
        with pytest.raises(AppError) as err:
            await t1.update("session", world.ids["X1"], {field: value})
        assert err.value.code is ErrorCode.FORBIDDEN
        assert list(err.value.details["fields"]) == [field]
    with pytest.raises(AppError) as err:
        await t1.update("session", world.ids["X2"], {"teacherNotes": "not mine"})
    assert err.value.code is ErrorCode.NOT_FOUND


async def test_guardian_updates_only_name_grade_subjects_of_own_students(world):
    g1 = await world.as_role("guardian")
    ok = await g1.update(
        "student", world.ids["S1"], {"name": "Sammy", "grade": "10", "subjects": ["art"]}
    )
    assert ok.get("name") == "Sammy"
    for field, value in (
        ("notes", "x"),
        ("guardianId", world.ids["G2"]),
        ("preferredTeacherId", world.ids["T2"]),
    ):
        with pytest.raises(AppError) as err:
            await g1.update("student", world.ids["S1"], {field: value})
        assert err.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(AppError) as err:
        await g1.update("student", world.ids["S2"], {"name": "x"})
    assert err.value.code is ErrorCode.NOT_FOUND


async def test_only_admins_set_links(world):
    for role, slug, target, field in (
        ("teacher", "teacher", "T1", "userId"),
        ("guardian", "guardian", "G1", "userId"),
        ("guardian", "student", "S1", "guardianId"),
        ("teacher", "session", "X1", "teacherId"),
    ):
        entities = await world.as_role(role)
        with pytest.raises(AppError) as err:
            await entities.update(slug, world.ids[target], {field: "someone-else"})
        assert err.value.code is ErrorCode.FORBIDDEN
    admin = await world.as_role("admin")
    moved = await admin.update("student", world.ids["S3"], {"guardianId": world.ids["G2"]})
    assert moved.get("guardianId") == world.ids["G2"]


async def test_server_owned_fields_are_closed_even_to_admins(world):
    admin = await world.as_role("admin")
    for slug, target, field, value in (
        ("session", "X1", "status", "completed"),
        ("entitlement", "E1", "remainingCredits", 99),
        ("payment", "P1", "status", "paid"),
    ):
        with pytest.raises(AppError) as err:
            await admin.update(slug, world.ids[target], {field: value})
        assert err.value.code is ErrorCode.FORBIDDEN


async def test_multi_role_actor_gets_union_of_scopes_but_per_document_masks(world, service):
    """A teacher who is also a guardian sees both families of sessions, and each session
    masked by the role that reaches it: no teacherNotes on their child's session with another
    teacher, no guardianNotes on their own teaching session."""
    admin = await world.as_role("admin")
    await admin.update("guardian", world.ids["G2"], {"userId": "u-t1"})
    both = await world.as_user("u-t1", "teacher", "guardian")
    assert await _ids(both, "session") == {world.ids["X1"], world.ids["X2"]}
    teaching = await both.get("session", world.ids["X1"])
    parenting = await both.get("session", world.ids["X2"])
    assert "teacherNotes" in teaching.data and "guardianNotes" not in teaching.data
    assert "guardianNotes" in parenting.data and "teacherNotes" not in parenting.data
    # Filtering is limited to fields visible under every role (no oracle via the other one).
    with pytest.raises(AppError):
        await both.query("session", where={"teacherNotes": "x"})


async def test_deny_overrides_allow(world, service):
    from app.platform.permissions import Policy, RoleDefinition, ScopeAll

    await service.roles.install(
        world.org,
        RoleDefinition(
            name="auditor",
            policies=(
                Policy(resource="*", action="*", effect="allow"),
                Policy(resource="guardian", action="read", effect="deny"),
            ),
            scopes={"*": (ScopeAll(),)},
        ),
    )
    auditor = await world.as_user("u-aud", "auditor", "guardian")
    assert auditor.access.allows("teacher", Action.READ)
    assert not auditor.access.allows("guardian", Action.READ)  # despite the guardian role
    with pytest.raises(AppError):
        await auditor.get("guardian", world.ids["G1"])
    # No read mask for the auditor: in scope, but every field hidden (fail closed).
    student = await auditor.get("student", world.ids["S2"])  # not G1's: only the auditor reaches it
    assert student is not None and student.data == {}


async def test_unknown_and_system_role_claims_grant_nothing(world):
    nobody = await world.as_user("u-x", "superuser", "system")
    assert nobody.access.roles == []
    for slug in ("teacher", "session", "payment"):
        with pytest.raises(AppError) as err:
            await nobody.query(slug)
        assert err.value.code is ErrorCode.FORBIDDEN
