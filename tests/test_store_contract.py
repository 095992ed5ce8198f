"""The store's contract, run against every backend available: always the in-memory store,
and a real MongoDB when MONGODB_URL is set (skipped with the reason otherwise)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest

from app.platform.store import DuplicateKey, IndexSpec
from app.platform.store.memory import MemoryStore


@pytest.fixture(params=["memory", "mongodb"])
async def backend(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    url = os.environ.get("MONGODB_URL")
    if not url:
        pytest.skip("MONGODB_URL is not set: no MongoDB server to run the contract against")
    from app.platform.store.mongo import MongoStore

    name = f"contract_{uuid.uuid4().hex[:8]}"
    store = MongoStore(url, name)
    yield store
    await store._client.drop_database(name)
    await store.close()


async def test_every_call_is_confined_to_its_organization(backend):
    col = backend.collection("things")
    await col.insert_one("a", {"_id": "1", "n": 1})
    await col.insert_one("b", {"_id": "2", "n": 1})
    assert [d["_id"] for d in await col.find("a", {"n": 1})] == ["1"]
    assert await col.count("b", {}) == 1
    assert await col.find_one("a", {"_id": "2"}) is None
    assert await col.update_one("a", {"_id": "2"}, {"$set": {"n": 5}}) == 0
    assert await col.delete_one("a", {"_id": "2"}) == 0
    assert (await col.find_one("b", {"_id": "2"}))["n"] == 1
    assert await col.distinct("a", "n", {}) == [1]


async def test_sort_skip_limit_and_ranges(backend):
    col = backend.collection("things")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await col.insert_many(
        "a", [{"_id": str(i), "n": i % 3, "at": t0.replace(day=i + 1)} for i in range(9)]
    )
    docs = await col.find(
        "a", {"at": {"$gte": t0.replace(day=3)}}, sort=[("n", -1), ("_id", 1)], limit=3, skip=1
    )
    assert [d["_id"] for d in docs] == ["5", "8", "4"]
    assert docs[0]["at"] == t0.replace(day=6)  # datetimes come back aware and equal


async def test_distinct_values_of_ids_arrays_and_missing_fields(backend):
    col = backend.collection("things")
    await col.insert_many(
        "a",
        [
            {"_id": "1", "data": {"ref": "x", "tags": ["p", "q"]}},
            {"_id": "2", "data": {"ref": "y", "tags": ["q"]}},
            {"_id": "3", "data": {"ref": "x"}},
            {"_id": "4", "data": {}},
            {"_id": "5"},
        ],
    )
    assert sorted(await col.distinct("a", "data.ref", {})) == ["x", "y"]
    assert sorted(await col.distinct("a", "data.tags", {})) == ["p", "q"]  # array elements
    assert await col.distinct("a", "data.ref", {"_id": "4"}) == []


async def test_reads_hand_out_documents_of_the_callers_own(backend):
    # The entity service masks what it read in place: that must not reach the store or
    # another reader.
    col = backend.collection("things")
    await col.insert_one("a", {"_id": "1", "data": {"name": "x", "secret": "s"}})
    (first,) = await col.find("a", {"_id": "1"})
    del first["data"]["secret"]
    first["data"]["name"] = "changed"
    again = await col.find_one("a", {"_id": "1"})
    assert again["data"] == {"name": "x", "secret": "s"}
    assert (await col.find("a", {"data.secret": "s"}))[0]["data"]["name"] == "x"


async def test_conditional_update_is_atomic_and_returns_the_new_document(backend):
    col = backend.collection("counters")
    await col.insert_one("a", {"_id": "c", "left": 1})
    first = await col.find_one_and_update(
        "a", {"_id": "c", "left": {"$gt": 0}}, {"$inc": {"left": -1}}
    )
    second = await col.find_one_and_update(
        "a", {"_id": "c", "left": {"$gt": 0}}, {"$inc": {"left": -1}}
    )
    assert first["left"] == 0 and second is None


async def test_upsert_inserts_once(backend):
    col = backend.collection("things")
    assert await col.update_one("a", {"k": "x"}, {"$setOnInsert": {"v": 1}}, upsert=True) == 0
    assert await col.update_one("a", {"k": "x"}, {"$setOnInsert": {"v": 2}}, upsert=True) == 1
    assert (await col.find_one("a", {"k": "x"}))["v"] == 1


async def test_unique_and_partial_unique_indexes(backend):
    spec = IndexSpec(
        "people",
        (("organizationId", 1), ("login", 1)),
        unique=True,
        partial={"login": {"$exists": True}},
    )
    await backend.ensure_indexes([spec])
    await backend.ensure_indexes([spec])  # idempotent
    col = backend.collection("people")
    await col.insert_one("a", {"_id": "1"})
    await col.insert_one("a", {"_id": "2"})  # no login: not indexed, no clash
    await col.insert_one("a", {"_id": "3", "login": "x"})
    await col.insert_one("b", {"_id": "4", "login": "x"})  # another org
    with pytest.raises(DuplicateKey):
        await col.insert_one("a", {"_id": "5", "login": "x"})
    with pytest.raises(DuplicateKey):
        await col.update_one("a", {"_id": "1"}, {"$set": {"login": "x"}})


def test_indexes_must_lead_with_the_organization():
    with pytest.raises(ValueError):
        IndexSpec("things", (("n", 1),))


async def test_calendar_claims_race_across_clients(backend):
    """Twenty overlapping claims from as many clients (on MongoDB: separate connection pools,
    as separate API processes would have) leave exactly one interval."""
    import asyncio
    from datetime import timedelta

    from app.platform.calendar import ResourceCalendar
    from app.platform.errors import Conflict

    stores = [backend]
    if not isinstance(backend, MemoryStore):
        from app.platform.store.mongo import MongoStore

        stores += [MongoStore(os.environ["MONGODB_URL"], backend._db.name) for _ in range(4)]
    await backend.ensure_indexes(
        [IndexSpec("calendars", (("organizationId", 1), ("resource", 1)), unique=True)]
    )
    t0 = datetime(2027, 1, 1, 10, tzinfo=UTC)
    calendars = [ResourceCalendar(stores[i % len(stores)]) for i in range(20)]
    results = await asyncio.gather(
        *(
            cal.claim(
                "a", "teacher:x", owner=f"s{i}", start=t0 + timedelta(minutes=5 * (i % 8)),
                end=t0 + timedelta(minutes=5 * (i % 8) + 60), padding=timedelta(minutes=15),
            )
            for i, cal in enumerate(calendars)
        ),
        return_exceptions=True,
    )  # fmt: skip
    assert sum(isinstance(r, str) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, str))
    busy = await calendars[0].busy("a", ["teacher:x"], t0, t0 + timedelta(days=1))
    assert len(busy) == 1
    for extra in stores[1:]:
        await extra.close()
