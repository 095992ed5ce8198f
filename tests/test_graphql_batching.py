"""Store round trips per request do not grow with page size (no N+1)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.world import NOW

QUERY = """query($n: Int!) { sessions(first: $n) { totalCount edges { node {
  id startTime student { id name } teacher { id name } } } } }"""


async def _add_sessions(world, count):
    system = await world.system()
    for i in range(count):
        await system.create(
            "session",
            {"subject": "math"},
            server_fields={
                "teacherId": world.ids["T1"],
                "studentId": world.ids["S1" if i % 3 else "S3"],
                "guardianId": world.ids["G1"],
                "startTime": NOW + timedelta(days=3, hours=i),
                "duration": 60,
                "status": "scheduled",
            },
        )


async def _round_trips(api, n, role):
    stats = api.world.service.store.stats
    before = stats.round_trips
    body = await api.gql(QUERY, {"n": n}, role=role)
    assert "errors" not in body, body
    edges = body["data"]["sessions"]["edges"]
    return stats.round_trips - before, edges


@pytest.mark.parametrize("role", ["admin", "teacher", "guardian"])
async def test_round_trips_equal_for_5_and_50_sessions(api, role):
    await _add_sessions(api.world, 60)
    await _round_trips(api, 1, role)  # per-organization caches are filled once, not per page
    small, edges5 = await _round_trips(api, 5, role)
    large, edges50 = await _round_trips(api, 50, role)
    assert len(edges5) == 5 and len(edges50) == 50
    # The relations are really followed, for every role.
    assert all(e["node"]["student"]["name"] and e["node"]["teacher"]["name"] for e in edges50)
    assert small == large, f"{role}: {small} round trips for 5, {large} for 50"
