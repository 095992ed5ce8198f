"""No actor reads another organization's entity by id, list, filter or count."""

from __future__ import annotations

import pytest

from app.platform.errors import AppError, ErrorCode
from app.tutoring.entity_types import ENTITY_TYPES

TYPES = [t.slug for t in ENTITY_TYPES]
PAIRS = {
    "teacher": "T1",
    "student": "S1",
    "guardian": "G1",
    "session": "X1",
    "payment": "P1",
    "entitlement": "E1",
}


@pytest.mark.parametrize("role", ["admin", "teacher", "guardian"])
async def test_no_cross_org_reads(world, other_world, role):
    me = await world.as_role(role)
    foreign = set(other_world.ids.values())
    for slug in TYPES:
        if not me.access.allows(slug, "list"):
            continue
        page = await me.query(slug, first=100)
        assert not {e.id for e in page.items} & foreign
        theirs = other_world.ids[PAIRS[slug]]
        assert await me.get(slug, theirs) is None
        assert await me.get_many(slug, list(foreign)) == {}
        assert await me.count(slug, where={"id": {"in": sorted(foreign)}}) == 0
        assert (await me.query(slug, where={"id": theirs})).items == []
        mine = await me.count(slug)
        assert mine == len(page.items)


async def test_same_user_id_in_two_orgs_is_two_actors(world, other_world):
    """u-t1 exists in both orgs; its token for org-a links only org-a's teacher."""
    a = await world.as_role("teacher")
    b = await other_world.as_role("teacher")
    assert a.actor.links["teacherId"] == world.ids["T1"]
    assert b.actor.links["teacherId"] == other_world.ids["T1"]
    assert {e.id for e in (await a.query("session")).items} == {world.ids["X1"]}


async def test_no_cross_org_writes(world, other_world):
    admin = await world.as_role("admin")
    for slug in ("teacher", "student", "guardian"):
        with pytest.raises(AppError) as err:
            await admin.update(slug, other_world.ids[PAIRS[slug]], {"name": "hijacked"})
        assert err.value.code is ErrorCode.NOT_FOUND
        with pytest.raises(AppError) as err:
            await admin.delete(slug, other_world.ids[PAIRS[slug]])
        assert err.value.code is ErrorCode.NOT_FOUND
    theirs = await (await other_world.system()).get("teacher", other_world.ids["T1"])
    assert theirs.get("name") == "T1"


async def test_store_refuses_calls_without_or_with_mismatched_org(store):
    col = store.collection("entities")
    with pytest.raises(ValueError):
        await col.find("", {})
    with pytest.raises(ValueError):
        await col.find("org-a", {"organizationId": "org-b"})
    doc = await col.insert_one("org-a", {"_id": "x", "organizationId": "org-a"})
    assert doc["organizationId"] == "org-a"
    with pytest.raises(ValueError):
        await col.insert_one("org-a", {"_id": "y", "organizationId": "org-b"})
