"""The intended policy, written out by hand, checked cell by cell against the engine.

Three tables: actions (role x type x action), read visibility (role x type x field) and
write access for updates (role x type x field). The README's role table says the same.
Each cell is checked through the secure entity service, on an entity in the role's scope
(admin: the X1/S1/... family; teacher: T1's; guardian: G1's).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform.errors import AppError, ErrorCode
from app.platform.permissions import Action
from app.tutoring.entity_types import ENTITY_TYPES
from tests.world import NOW

ROLES = ("admin", "teacher", "guardian")
TYPES = tuple(t.slug for t in ENTITY_TYPES)
FIELDS = {t.slug: t.fields for t in ENTITY_TYPES}

# -- actions ---------------------------------------------------------------------------
# L list, R read, C create, U update, D delete
ACTIONS = {
    "admin": {**{t: "LRCUD" for t in TYPES}, "payment": "LRCD", "entitlement": "LRCD"},
    "teacher": {
        "teacher": "LRU",
        "student": "LR",
        "guardian": "",
        "session": "LRU",
        "payment": "",
        "entitlement": "",
    },
    "guardian": {
        "teacher": "LR",
        "student": "LRU",
        "guardian": "LRU",
        "session": "LRCU",
        "payment": "LR",
        "entitlement": "LR",
    },
}
LETTER = {
    "L": Action.LIST,
    "R": Action.READ,
    "C": Action.CREATE,
    "U": Action.UPDATE,
    "D": Action.DELETE,
}

# -- read visibility ---------------------------------------------------------------------
ALL = "*"
VISIBLE = {
    "admin": {t: ALL for t in TYPES},
    "teacher": {
        "teacher": ALL,
        "student": {"name", "grade", "subjects"},
        "guardian": set(),
        "session": {
            "teacherId",
            "studentId",
            "startTime",
            "duration",
            "subject",
            "meetingLink",
            "status",
            "teacherNotes",
            "reportSubmitted",
            "reportContent",
            "reportShared",
            "reportSharedAt",
            "reportSharedBy",
            "startedAt",
            "completedAt",
        },
        "payment": set(),
        "entitlement": set(),
    },
    "guardian": {
        "teacher": {"name", "subjects", "bio"},
        "student": {"name", "grade", "subjects", "preferredTeacherId", "guardianId"},
        "guardian": ALL,
        "session": {
            "teacherId",
            "studentId",
            "guardianId",
            "startTime",
            "duration",
            "subject",
            "meetingLink",
            "status",
            "entitlementId",
            "paymentId",
            "guardianNotes",
            "reportSubmitted",
            "reportShared",
            "reportSharedAt",
            "cancellationReason",
            "cancelledAt",
            "rescheduleCount",
            "holdExpiresAt",
            "startedAt",
            "completedAt",
        },
        # Every payment field, refundDue and refundReason included: a refund owed is the
        # guardian's business too.
        "payment": ALL,
        "entitlement": ALL,
    },
}

# -- read visibility that depends on the document -------------------------------------------
# (role, type) -> condition -> the fields shown, beyond VISIBLE, on documents matching it.
# A condition is the stored values that make it hold; the in-scope entity is given them.
CONDITIONS = {"shared": {"reportShared": True}}
VISIBLE_WHEN = {
    ("guardian", "session"): {"shared": {"reportContent"}},
}

# -- write access on update --------------------------------------------------------------
SERVER_OWNED = {
    "session": {
        "teacherId",
        "studentId",
        "guardianId",
        "startTime",
        "duration",
        "status",
        "entitlementId",
        "paymentId",
        "cancellationReason",
        "cancelledBy",
        "cancelledAt",
        "rescheduleCount",
        "holdExpiresAt",
        "startedAt",
        "completedAt",
        "reportShared",
        "reportSharedAt",
        "reportSharedBy",
    },
    "payment": {
        "status",
        "providerReference",
        "paidAt",
        "failedAt",
        "failureReason",
        "refundDue",
        "refundReason",
    },
    "entitlement": {"remainingCredits", "availableCredits", "usedCredits", "status"},
}
WRITABLE = {
    "admin": {
        "teacher": ALL,
        "student": ALL,
        "guardian": ALL,
        "session": {
            "subject",
            "meetingLink",
            "teacherNotes",
            "guardianNotes",
            "reportSubmitted",
            "reportContent",
        },
        "payment": set(),
        "entitlement": set(),
    },
    "teacher": {
        "teacher": {"name", "phone", "bio", "subjects", "availability", "timezone"},
        "student": set(),
        "guardian": set(),
        "session": {"teacherNotes", "reportSubmitted", "reportContent"},
        "payment": set(),
        "entitlement": set(),
    },
    "guardian": {
        "teacher": set(),
        "student": {"name", "grade", "subjects"},
        "guardian": {"name", "email", "phone", "whatsappNumber", "billingAddress"},
        "session": {"guardianNotes"},
        "payment": set(),
        "entitlement": set(),
    },
}

# The entity each role reaches of each type (None: the role has no access to the type).
IN_SCOPE = {
    "admin": {
        "teacher": "T1",
        "student": "S1",
        "guardian": "G1",
        "session": "X1",
        "payment": "P1",
        "entitlement": "E1",
    },
    "teacher": {"teacher": "T1", "student": "S1", "session": "X1"},
    "guardian": {
        "teacher": "T1",
        "student": "S1",
        "guardian": "G1",
        "session": "X1",
        "payment": "P1",
        "entitlement": "E1",
    },
}
# ...and an entity of the same type it must not reach (for scope, not policy).
OUT_OF_SCOPE = {
    "teacher": {"teacher": "T2", "student": "S2", "session": "X2"},
    "guardian": {
        "student": "S2",
        "guardian": "G2",
        "session": "X2",
        "payment": "P2",
        "entitlement": "E2",
    },
}


def _expand(cell, slug):
    return set(FIELDS[slug]) if cell == ALL else set(cell)


def _sample(slug: str, field: str, world) -> object:
    """A valid value for an update of ``field`` (unchanged links keep the entity in scope)."""
    ids = world.ids
    samples = {
        "name": "Renamed",
        "email": "new@example.com",
        "phone": "+1 555 4242",
        "bio": "new bio",
        "subjects": ["art"],
        "hourlyRate": 41,
        "timezone": "Asia/Tokyo",
        "grade": "10",
        "notes": "new note",
        "whatsappNumber": "+1 555 7777",
        "paymentMethod": "bank",
        "billingAddress": {"city": "Y"},
        "availability": [{"dayOfWeek": 2, "startHour": 8, "endHour": 12}],
        "subject": "physics",
        "meetingLink": "https://meet.example.com/y",
        "teacherNotes": "n",
        "guardianNotes": "g",
        "reportSubmitted": True,
        "reportContent": "r",
        "method": "cash",
        "paymentLinkUrl": "https://pay.example.com/y",
        "currency": "EUR",
        "amount": 120,
        "expiresAt": NOW + timedelta(days=30),
        "totalCredits": 5,
        "recurringSchedule": {"dayOfWeek": 3, "hour": 9},
        "userId": {"teacher": "u-t1", "guardian": "u-g1"}.get(slug),
        "preferredTeacherId": ids["T1"],
        "guardianId": ids["G1"],
        "studentId": ids["S1"],
        "teacherId": ids["T1"],
        "entitlementId": ids["E1"],
        "paymentId": ids["P1"],
        "sessionId": ids["X1"],
        "startTime": NOW + timedelta(days=3),
        "duration": 45,
        "status": "cancelled",
        "cancellationReason": "r",
        "cancelledBy": "u",
        "cancelledAt": NOW,
        "rescheduleCount": 1,
        "holdExpiresAt": NOW,
        "startedAt": NOW,
        "completedAt": NOW,
        "reportShared": True,
        "reportSharedAt": NOW,
        "reportSharedBy": "u",
        "remainingCredits": 3,
        "availableCredits": 3,
        "usedCredits": 1,
        "providerReference": "x",
        "paidAt": NOW,
        "failedAt": NOW,
        "failureReason": "x",
        "refundDue": True,
        "refundReason": "x",
    }
    return samples[field]


def test_tables_cover_every_cell():
    for role in ROLES:
        assert set(ACTIONS[role]) == set(TYPES)
        assert set(VISIBLE[role]) == set(TYPES)
        assert set(WRITABLE[role]) == set(TYPES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("slug", TYPES)
@pytest.mark.parametrize("letter", "LRCUD")
async def test_action_cell(world, role, slug, letter):
    entities = await world.as_role(role)
    action = LETTER[letter]
    expected = letter in ACTIONS[role][slug]
    assert entities.access.allows(slug, action) is expected

    target = IN_SCOPE[role].get(slug)
    if action is Action.LIST:
        if expected:
            page = await entities.query(slug, first=100)
            assert world.ids[target] in {e.id for e in page.items}
            hidden = OUT_OF_SCOPE.get(role, {}).get(slug)
            if hidden:
                assert world.ids[hidden] not in {e.id for e in page.items}
        else:
            with pytest.raises(AppError) as err:
                await entities.query(slug)
            assert err.value.code is ErrorCode.FORBIDDEN
    elif action is Action.READ:
        if expected:
            assert (await entities.get(slug, world.ids[target])) is not None
            hidden = OUT_OF_SCOPE.get(role, {}).get(slug)
            if hidden:
                assert await entities.get(slug, world.ids[hidden]) is None
        else:
            with pytest.raises(AppError) as err:
                await entities.get(slug, world.ids[IN_SCOPE["admin"][slug]])
            assert err.value.code is ErrorCode.FORBIDDEN
    elif action is Action.UPDATE:
        writable = _expand(WRITABLE[role][slug], slug) - SERVER_OWNED.get(slug, set())
        some_id = world.ids[target or IN_SCOPE["admin"][slug]]
        field = sorted(writable)[0] if writable else "name"
        if expected:
            updated = await entities.update(slug, some_id, {field: _sample(slug, field, world)})
            assert updated.id == some_id
            hidden = OUT_OF_SCOPE.get(role, {}).get(slug)
            if hidden:
                with pytest.raises(AppError) as err:
                    await entities.update(
                        slug, world.ids[hidden], {field: _sample(slug, field, world)}
                    )
                assert err.value.code is ErrorCode.NOT_FOUND
        else:
            with pytest.raises(AppError) as err:
                await entities.update(slug, some_id, {field: "x"})
            assert err.value.code is ErrorCode.FORBIDDEN
    elif action is Action.DELETE:
        if expected:
            # A fresh entity that nothing references yet.
            data, server = _fresh(slug, world)
            victim = await (await world.system()).create(slug, data, server_fields=server)
            assert await entities.delete(slug, victim.id) == victim.id
            assert await (await world.system()).get(slug, victim.id) is None
        else:
            with pytest.raises(AppError) as err:
                await entities.delete(slug, world.ids[IN_SCOPE["admin"][slug]])
            assert err.value.code is ErrorCode.FORBIDDEN
    elif action is Action.CREATE:
        if not expected:
            with pytest.raises(AppError) as err:
                await entities.create(slug, {})
            assert err.value.code is ErrorCode.FORBIDDEN
        elif slug == "session" and role == "guardian":
            # Allowed by policy for booking (a domain operation); raw input sets nothing.
            with pytest.raises(AppError) as err:
                await entities.create("session", {"subject": "math"}, server_fields=_session(world))
            assert err.value.code is ErrorCode.FORBIDDEN
            assert err.value.details["fields"] == {"subject": "is not writable by your role"}
        else:
            data, server = _fresh(slug, world)
            if slug == "session":
                data = {"subject": "math"}
            created = await entities.create(slug, data, server_fields=server)
            assert (await entities.get(slug, created.id)) is not None


def _session(world):
    return {
        "teacherId": world.ids["T1"],
        "studentId": world.ids["S1"],
        "guardianId": world.ids["G1"],
        "startTime": NOW + timedelta(days=5),
        "duration": 60,
        "status": "scheduled",
    }


def _fresh(slug, world):
    ids = world.ids
    return {
        "teacher": ({"name": "New", "email": "n@example.com"}, None),
        "student": ({"name": "New"}, None),
        "guardian": ({"name": "New", "phone": "+1 555 0000"}, None),
        "session": ({}, _session(world)),
        "payment": ({"guardianId": ids["G1"], "amount": 10}, {"status": "pending"}),
        "entitlement": (
            {"guardianId": ids["G1"], "studentId": ids["S1"], "totalCredits": 2},
            {"remainingCredits": 2, "availableCredits": 2, "status": "active"},
        ),
    }[slug]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("slug", TYPES)
async def test_visibility_row(world, role, slug):
    """Every field of the type, visible or hidden, for one (role, type) row."""
    entities = await world.as_role(role)
    expected = _expand(VISIBLE[role][slug], slug)
    target = IN_SCOPE[role].get(slug)
    if target is None:
        assert expected == set()
        assert not entities.access.allows(slug, Action.READ)
        return
    entity = await entities.get(slug, world.ids[target])
    # The world sets every field of the in-scope entities, so absence means hidden.
    assert set(entity.data) == expected, f"{role} reading {slug}"
    listed = next(e for e in (await entities.query(slug, first=100)).items if e.id == entity.id)
    assert set(listed.data) == expected


CONDITIONAL_CELLS = [
    pytest.param(role, slug, name, id=f"{role}-{slug}-{name}")
    for role in ROLES
    for slug in TYPES
    if IN_SCOPE[role].get(slug)
    for name in CONDITIONS
]


def visible_when(role: str, slug: str, condition: str) -> set[str]:
    """What the role sees on an in-scope entity matching ``condition``."""
    extra = VISIBLE_WHEN.get((role, slug), {}).get(condition, set())
    return _expand(VISIBLE[role][slug], slug) | extra


@pytest.mark.parametrize(("role", "slug", "condition"), CONDITIONAL_CELLS)
async def test_visibility_row_when_the_document_matches(world, role, slug, condition):
    """Every (role, type) row again on an entity matching each condition (where the type has
    the condition's fields): VISIBLE plus VISIBLE_WHEN, by get and by list."""
    values = CONDITIONS[condition]
    if not set(values) <= set(FIELDS[slug]):
        assert (role, slug) not in VISIBLE_WHEN
        return
    target = world.ids[IN_SCOPE[role][slug]]
    await (await world.system()).update(slug, target, {}, server_fields=values)
    entities = await world.as_role(role)
    expected = visible_when(role, slug, condition)
    assert set((await entities.get(slug, target)).data) == expected, f"{role} reading {slug}"
    listed = next(e for e in (await entities.query(slug, first=100)).items if e.id == target)
    assert set(listed.data) == expected
    # ...and on the document that no longer matches, VISIBLE again.
    await (await world.system()).update(slug, target, {}, server_fields=dict.fromkeys(values))
    assert set((await entities.get(slug, target)).data) == _expand(VISIBLE[role][slug], slug) - set(
        values
    )


@pytest.mark.parametrize(("role", "slug"), list(VISIBLE_WHEN))
async def test_conditional_fields_are_never_filtered_sorted_or_written(world, role, slug):
    """A field a role sees only on some documents would, as a filter or an order, tell the
    role about the documents where it is hidden: FORBIDDEN, as for hidden fields."""
    from app.platform.entities import OrderKey

    entities = await world.as_role(role)
    for fields in VISIBLE_WHEN[(role, slug)].values():
        for field in fields:
            for call in (
                entities.query(slug, where={field: {"contains": "draft"}}),
                entities.count(slug, where={field: {"exists": True}}),
                entities.query(slug, order_by=[OrderKey(field)]),
            ):
                with pytest.raises(AppError) as err:
                    await call
                assert err.value.code is ErrorCode.FORBIDDEN, (role, field)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("slug", TYPES)
async def test_write_row(world, role, slug):
    """Every field of the type, writable or refused with FORBIDDEN naming it."""
    entities = await world.as_role(role)
    expected = _expand(WRITABLE[role][slug], slug) - SERVER_OWNED.get(slug, set())
    target = world.ids[IN_SCOPE[role].get(slug) or IN_SCOPE["admin"][slug]]
    for field in FIELDS[slug]:
        value = _sample(slug, field, world)
        if field in expected:
            updated = await entities.update(slug, target, {field: value})
            assert updated.id == target
        else:
            with pytest.raises(AppError) as err:
                await entities.update(slug, target, {field: value})
            assert err.value.code is ErrorCode.FORBIDDEN, (role, slug, field)
            if entities.access.allows(slug, Action.UPDATE):
                assert list(err.value.details["fields"]) == [field]


# -- guardian and teacher features ---------------------------------------------------------
# Fields added for guardians' and teachers' screens, each role's view stated on its own row
# (the VISIBLE table above says the same through its "every field" cells).
ADDED_FIELDS = {
    ("entitlement", "availableCredits"): {"admin": True, "teacher": False, "guardian": True},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("slug", "field"), sorted(ADDED_FIELDS))
async def test_added_field_visibility(world, role, slug, field):
    expected = ADDED_FIELDS[(slug, field)][role]
    assert (field in _expand(VISIBLE[role][slug], slug)) is expected
    assert field in SERVER_OWNED[slug]
    entities = await world.as_role(role)
    if not entities.access.allows(slug, Action.READ):
        assert not expected
        return
    entity = await entities.get(slug, world.ids[IN_SCOPE[role][slug]])
    assert (field in entity.data) is expected


def test_readme_role_table_matches_the_intended_policy():
    """The README's role table states the same actions as ACTIONS above."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Roles", 1)[1].split("\n#", 1)[0]
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith(("| admin", "| teacher", "| guardian"))
    ]
    stated: dict[tuple[str, str], str] = {}
    for role, types, actions, *_ in rows:
        names = TYPES if types == "every type" else [t.strip() for t in types.split(",")]
        for slug in names:
            stated[(role, slug)] = "" if actions == "—" else actions
    assert stated == {(r, t): ACTIONS[r][t] for r in ROLES for t in TYPES}
