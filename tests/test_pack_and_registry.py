"""The spec's entity type tests, plus validation and idempotent installs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform.errors import BadUserInput, ErrorCode
from app.platform.packs import install_pack
from app.platform.permissions import ReadMask
from app.tutoring.pack import TUTORING_PACK
from tests.world import NOW

SIX = ["teacher", "student", "guardian", "session", "payment", "entitlement"]


async def test_install_creates_six_types(service):
    types = await install_pack(service.store, "fresh-org", TUTORING_PACK)
    assert [t.slug for t in types] == SIX
    stored = await service.registry.all("fresh-org")
    assert sorted(stored) == sorted(SIX)
    assert {r.name for r in await service.roles.all("fresh-org")} == {
        "admin",
        "teacher",
        "guardian",
    }


async def test_install_twice_changes_nothing_and_keeps_customisations(service):
    await install_pack(service.store, "org-x", TUTORING_PACK)
    await service.roles.set_read_mask(
        "org-x", "teacher", "teacher", ReadMask(mode="blacklist", fields=("hourlyRate",))
    )
    before_types = await service.store.collection("entity_types").find("org-x")
    before_roles = await service.store.collection("roles").find("org-x")
    again = await install_pack(service.store, "org-x", TUTORING_PACK)
    assert [t.slug for t in again] == SIX
    assert await service.store.collection("entity_types").find("org-x") == before_types
    assert await service.store.collection("roles").find("org-x") == before_roles


async def test_session_with_invalid_status_is_refused(world):
    system = await world.system()
    before = await system.count("session")
    with pytest.raises(BadUserInput) as err:
        await system.create(
            "session",
            {},
            server_fields={
                "teacherId": world.ids["T1"],
                "studentId": world.ids["S1"],
                "startTime": NOW + timedelta(days=3),
                "duration": 60,
                "status": "partying",
            },
        )
    assert err.value.code is ErrorCode.BAD_USER_INPUT
    assert set(err.value.fields) == {"status"}
    assert await system.count("session") == before


async def test_validation_names_every_failing_field(world):
    admin = await world.as_role("admin")
    with pytest.raises(BadUserInput) as err:
        await admin.create(
            "teacher", {"email": "not-an-email", "hourlyRate": -1, "timezone": "Mars/Olympus"}
        )
    assert set(err.value.fields) == {"name", "email", "hourlyRate", "timezone"}


async def test_unknown_fields_are_bad_input(world):
    admin = await world.as_role("admin")
    with pytest.raises(BadUserInput) as err:
        await admin.create("student", {"name": "A", "shoeSize": 42})
    assert err.value.fields == {"shoeSize": "is not a field of this type"}


async def test_availability_allows_minutes_and_midnight_end(world):
    admin = await world.as_role("admin")
    teacher = await admin.update(
        "teacher",
        world.ids["T1"],
        {"availability": [{"dayOfWeek": 5, "startHour": 18, "startMinute": 30, "endHour": 24}]},
    )
    assert teacher.get("availability")[0]["endHour"] == 24
    with pytest.raises(BadUserInput) as err:
        await admin.update(
            "teacher",
            world.ids["T1"],
            {"availability": [{"dayOfWeek": 7, "startHour": 9, "endHour": 25}]},
        )
    assert set(err.value.fields) == {"availability.0.dayOfWeek", "availability.0.endHour"}


async def test_datetimes_accept_iso_strings_with_offset_only(world):
    admin = await world.system()  # packs change through domain code only
    updated = await admin.update(
        "entitlement", world.ids["E1"], {"expiresAt": "2027-01-01T10:00:00+02:00"}
    )
    assert updated.get("expiresAt").isoformat() == "2027-01-01T08:00:00+00:00"
    with pytest.raises(BadUserInput) as err:
        await admin.update("entitlement", world.ids["E1"], {"expiresAt": "2027-01-01T10:00:00"})
    assert "expiresAt" in err.value.fields


async def test_references_must_exist_in_the_same_org(world, other_world):
    admin = await world.as_role("admin")
    with pytest.raises(BadUserInput) as err:
        await admin.update("student", world.ids["S1"], {"guardianId": other_world.ids["G1"]})
    assert err.value.fields == {"guardianId": "no guardian with this id"}


async def test_deleting_a_referenced_entity_is_a_conflict(world):
    admin = await world.as_role("admin")
    with pytest.raises(Exception) as err:
        await admin.delete("teacher", world.ids["T1"])
    assert err.value.code is ErrorCode.CONFLICT
    assert "session" in err.value.details["referencedBy"]
    assert await admin.get("teacher", world.ids["T1"]) is not None


async def test_user_links_are_unique_per_org(world):
    admin = await world.as_role("admin")
    with pytest.raises(Exception) as err:
        await admin.create("teacher", {"name": "Dup", "email": "d@example.com", "userId": "u-t1"})
    assert err.value.code is ErrorCode.CONFLICT
