"""Querying, paging, writing and auditing through the secure entity service."""

from __future__ import annotations

import pytest

from app.platform.entities import OrderKey
from app.platform.errors import AppError, ErrorCode


async def _make_students(world, n, prefix="P"):
    admin = await world.as_role("admin")
    return [
        (await admin.create("student", {"name": f"{prefix}{i:02}", "grade": str(i % 3)})).id
        for i in range(n)
    ]


async def test_keyset_pages_are_stable_under_inserts(world):
    admin = await world.as_role("admin")
    await _make_students(world, 12)
    order = [OrderKey("name")]
    first = await admin.query("student", where={"name": {"contains": "P"}}, order_by=order, first=5)
    assert [e.get("name") for e in first.items] == [f"P{i:02}" for i in range(5)]
    assert first.has_next_page
    # Inserts that sort before the cursor do not shift the next page.
    await _make_students(world, 3, prefix="PA")  # "PA.." sorts after "P04"? no: 'A' > '0'
    await admin.create("student", {"name": "P00a"})
    second = await admin.query(
        "student",
        where={"name": {"contains": "P"}},
        order_by=order,
        first=5,
        after=first.end_cursor,
    )
    assert [e.get("name") for e in second.items] == [f"P{i:02}" for i in range(5, 10)]


async def _walk(entities, order) -> list[str]:
    """Every id, page by page (two at a time), following the cursors."""
    seen, after = [], None
    while True:
        page = await entities.query("student", order_by=order, first=2, after=after)
        seen += [e.id for e in page.items]
        if not page.has_next_page:
            return seen
        after = page.end_cursor


async def test_pages_cover_everything_once_in_both_directions(world):
    admin = await world.as_role("admin")
    await _make_students(world, 7)
    for desc in (False, True):
        seen = await _walk(admin, [OrderKey("grade", desc)])
        assert len(seen) == len(set(seen)) == await admin.count("student")


async def test_nulls_page_correctly(world):
    admin = await world.as_role("admin")
    for i in range(3):
        await admin.create("student", {"name": f"nograde{i}"})
    for desc in (False, True):
        seen = await _walk(admin, [OrderKey("grade", desc)])
        assert len(seen) == len(set(seen)) == 6


async def test_page_size_is_capped(world):
    admin = await world.as_role("admin")
    await _make_students(world, 105)
    page = await admin.query("student", first=1000)
    assert len(page.items) == 100 and page.has_next_page


async def test_bad_cursor_and_mismatched_order_are_bad_input(world):
    admin = await world.as_role("admin")
    page = await admin.query("student", first=1)
    for after, order in (("garbage!!", []), (page.end_cursor, [OrderKey("name")])):
        with pytest.raises(AppError) as err:
            await admin.query("student", after=after, order_by=order)
        assert err.value.code is ErrorCode.BAD_USER_INPUT


@pytest.mark.parametrize(
    "where",
    [
        {"name": {"$ne": None}},
        {"name": {"eq": {"$ne": None}}},
        {"name": {"regex": ".*"}},
        {"$where": "1"},
        {"data.name": "S1"},
        {"name": {"in": "S1"}},
    ],
)
async def test_filters_refuse_operator_injection(world, where):
    admin = await world.as_role("admin")
    with pytest.raises(AppError) as err:
        await admin.query("student", where=where)
    assert err.value.code is ErrorCode.BAD_USER_INPUT


async def test_filters_and_search(world):
    admin = await world.as_role("admin")
    ids = world.ids
    by_guardian = await admin.query("student", where={"guardianId": ids["G1"]})
    assert {e.id for e in by_guardian.items} == {ids["S1"], ids["S3"]}
    assert await admin.count("student", where={"guardianId": {"in": [ids["G1"], ids["G2"]]}}) == 3
    assert await admin.count("student", search="s2") == 1
    assert await admin.count("teacher", where={"subjects": {"contains": "math"}}) == 2
    assert (
        await admin.count("session", where={"startTime": {"gt": "2026-11-01T00:00:00+00:00"}}) == 2
    )
    assert await admin.count("student", search=".*") == 0  # regex characters are literal


async def test_search_skips_hidden_search_fields(world):
    g1 = await world.as_role("guardian")
    # Teacher email is a search field but hidden from guardians: searching it finds nothing.
    assert await g1.count("teacher", search="t@example.com") == 0
    assert await g1.count("teacher", search="T1") == 1


async def test_update_clears_with_none_and_audits_changed_fields(world, service):
    admin = await world.as_role("admin")
    updated = await admin.update(
        "student", world.ids["S1"], {"notes": None, "grade": "grade-zq", "name": "S1"}
    )
    assert "notes" not in updated.data and updated.get("grade") == "grade-zq"
    trail = await service.audit.for_entity(world.org, world.ids["S1"])
    last = trail[-1]
    assert last["action"] == "update" and last["fields"] == ["grade", "notes"]
    assert last["actor"]["userId"] == "u-admin"
    assert "grade-zq" not in str(last)  # names of fields, never values


async def test_no_op_update_writes_nothing(world, service):
    admin = await world.as_role("admin")
    before = len(await service.audit.for_entity(world.org, world.ids["S1"]))
    await admin.update("student", world.ids["S1"], {"name": "S1"})
    assert len(await service.audit.for_entity(world.org, world.ids["S1"])) == before


async def test_concurrent_modification_is_a_conflict(world, service):
    admin = await world.as_role("admin")
    col = service.collection
    doc = await col.find_one(world.org, {"_id": world.ids["S1"]})
    # Someone else writes between our read and our write.
    original = col.find_one

    async def stale_read(org, filter=None):
        return doc if world.ids["S1"] in repr(filter) else await original(org, filter)

    await admin.update("student", world.ids["S1"], {"grade": "11"})
    col.find_one = stale_read
    try:
        with pytest.raises(AppError) as err:
            await admin.update("student", world.ids["S1"], {"grade": "7"})
        assert err.value.code is ErrorCode.CONFLICT
    finally:
        col.find_one = original
    assert (await admin.get("student", world.ids["S1"])).get("grade") == "11"


async def test_jobs_act_as_an_audited_system_actor(world, service):
    system = await world.system()
    await system.update("student", world.ids["S1"], {"notes": "by job"})
    last = (await service.audit.for_entity(world.org, world.ids["S1"]))[-1]
    assert last["actor"]["userId"] == "system:test" and last["actor"]["system"] is True


async def test_get_many_is_one_query(world, service):
    admin = await world.as_role("admin")
    ids = await _make_students(world, 30)
    before = service.store.stats.round_trips
    found = await admin.get_many("student", ids)
    assert len(found) == 30
    assert service.store.stats.round_trips - before == 1


async def test_relational_scope_is_computed_once_per_request(world, service):
    t1 = await world.as_role("teacher")
    await t1.query("student")
    before = service.store.stats.round_trips
    await t1.query("student")
    await t1.get("student", world.ids["S1"])
    assert service.store.stats.round_trips - before == 2
