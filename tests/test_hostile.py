"""Hostile documents over real HTTP: each is refused with its code in well under a second,
and the event loop that serves every organization keeps answering ``/healthz`` meanwhile.

Templates and JWKS floods have their own files (``test_template_bounds.py``,
``test_jwks.py``); this one covers cost, size, encoding and connection attacks.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.graphql.server import BoundedH11Protocol
from tests.world import NOW

LIMIT = 10_000


async def _children_sessions(world, count: int) -> None:
    """Guardian G1's child S1 gets ``count`` sessions (the attack's multiplier)."""
    system = await world.system()
    for i in range(count):
        await system.create(
            "session",
            {"subject": "math"},
            server_fields={
                "teacherId": world.ids["T1"],
                "studentId": world.ids["S1"],
                "guardianId": world.ids["G1"],
                "startTime": NOW + timedelta(days=3, hours=i),
                "duration": 60,
                "status": "scheduled",
            },
        )


def _nested(levels: int, first: int = 100) -> str:
    """sessions -> student -> sessions -> ... ``levels`` connections deep."""
    inner = "id"
    for _ in range(levels):
        inner = f"sessions(first: {first}) {{ edges {{ node {{ student {{ {inner} }} }} }} }}"
    return "{ " + inner.replace("student { id }", "id", 1) + " }"


def _codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


HOSTILE = {
    "nested fan-out": _nested(3),
    "aliases": "{ "
    + " ".join(
        f"a{i}: sessions(first: 100) {{ edges {{ node {{ student {{ "
        f"sessions(first: 100) {{ edges {{ node {{ id }} }} }} }} }} }} }}"
        for i in range(20)
    )
    + " }",
    "fragments": """
        query { ...A ...A }
        fragment A on Query { x: sessions(first: 100) { edges { node { ...B } } } }
        fragment B on Session { student { sessions(first: 100) { edges { node { ...C } } } } }
        fragment C on Session { teacher { name } student { name } guardian { name } }
    """,
    "variables": "query($n: Int) { sessions(first: $n) { edges { node { student { "
    "sessions(first: $n) { edges { node { student { sessions(first: $n) { "
    "edges { node { id } } } } } } } } } } } }",
    "introspection bomb": "{ __schema { types { fields { type { fields { type { fields "
    "{ name } } } } } } } }",
}


async def _timed_healthz(api, stop: asyncio.Event, latencies: list[float]) -> list[float]:
    while not stop.is_set():
        start = time.perf_counter()
        response = await api.client.get(f"{api.base_url}/healthz")
        assert response.status_code == 200
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(0.01)
    return latencies


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def test_hostile_documents_are_refused_fast_while_healthz_answers(api, frozen_heap):
    await _children_sessions(api.world, 120)
    token = api.token_for("guardian")
    stop = asyncio.Event()
    latencies: list[float] = []
    probe = asyncio.create_task(_timed_healthz(api, stop, latencies))
    await asyncio.sleep(0.05)

    async def attack(name: str, document: str) -> tuple[str, float, dict]:
        start = time.perf_counter()
        variables = {"n": 100} if "$n" in document else None
        body = await api.gql(document, variables, token=token)
        return name, time.perf_counter() - start, body

    results = []
    while len(latencies) < 50:  # rounds of concurrent attacks, while the probe samples
        results += await asyncio.gather(*(attack(n, d) for n, d in HOSTILE.items()))
    stop.set()
    await probe
    for name, elapsed, body in results:
        assert _codes(body) == ["QUERY_TOO_COMPLEX"], (name, body)
        assert body["data"] is None, name
        assert elapsed < 1.0, f"{name} took {elapsed:.2f} s to refuse"
    message = next(b for n, _, b in results if n == "nested fan-out")["errors"][0]["message"]
    estimate, limit = map(int, re.findall(r"cost is (\d+), above the limit of (\d+)", message)[0])
    assert estimate > 1_000_000 and limit == LIMIT
    assert _p99(latencies) < 0.1, f"/healthz p99 {_p99(latencies) * 1000:.0f} ms"


async def test_cost_counts_pages_aliases_and_fragments(api):
    page = "{ sessions(first: 50) { edges { node { id student { name } teacher { name } } } } }"
    body = await api.gql(page)
    cost = body["extensions"]["cost"]
    # 1 connection + 50 x (edge + node + student + teacher)
    assert cost["requestedQueryCost"] == 1 + 50 * 4
    assert cost["maximumQueryCost"] == LIMIT
    # The world holds two sessions: edge, node, student and teacher for each, and the page.
    assert cost["actualQueryCost"] == 1 + 2 * 4
    aliased = (
        "{ a: sessions(first: 10) { edges { node { id } } } b: sessions { edges { node { id } } } }"
    )
    body = await api.gql(aliased)
    assert body["extensions"]["cost"]["requestedQueryCost"] == (1 + 10 * 2) + (1 + 20 * 2)
    spread = """query { ...F ...G } fragment F on Query { a: sessions(first: 5) { edges { node { id } } } }
        fragment G on Query { b: sessions(first: 5) { edges { node { ...H } } } }
        fragment H on Session { student { name } }"""
    body = await api.gql(spread)
    assert body["extensions"]["cost"]["requestedQueryCost"] == (1 + 5 * 2) + (1 + 5 * 3)


async def test_every_response_reports_its_cost(api):
    admin = api.token_for("admin")
    ok = await api.gql("{ me { userId } }")
    assert ok["extensions"]["cost"]["requestedQueryCost"] == 1
    invalid = await api.gql("{ me { nope } }")
    assert _codes(invalid) == ["BAD_USER_INPUT"] and "cost" in invalid["extensions"]
    syntax = await api.gql("{ me { ")
    assert _codes(syntax) == ["BAD_USER_INPUT"] and "cost" in syntax["extensions"]
    denied = await api.gql("{ payments { totalCount } }", role="teacher")
    assert _codes(denied) == ["FORBIDDEN"] and "cost" in denied["extensions"]
    mutation = await api.gql('mutation { cancelSession(id: "nope") { id } }')
    assert _codes(mutation) == ["NOT_FOUND"] and "cost" in mutation["extensions"]
    too_big = await api.post("{ me { userId } }", {"pad": "x" * 300_000}, token=admin)
    assert too_big.status_code == 413 and "cost" in too_big.json()["extensions"]


async def test_depth_limit_is_twelve_levels_of_fields(api):
    path = ["me", "guardian", "students", "edges", "node", "guardian", "students", "edges"]
    path += ["node", "guardian", "students"]  # 11 levels

    def nested(fields: list[str]) -> str:
        return "{ " + " { ".join(fields) + " }" * (len(fields) - 1) + " }"

    twelve = nested([*path, "totalCount"])
    thirteen = nested([*path, "edges", "cursor"])
    assert "errors" not in await api.gql(twelve, role="guardian")
    assert _codes(await api.gql(thirteen, role="guardian")) == ["QUERY_TOO_COMPLEX"]


async def test_an_organization_can_lower_its_cost_limit(api):
    page = "{ sessions(first: 100) { edges { node { id } } } }"  # cost 201
    set_limit = "mutation($c: Int) { updateOrganizationSettings(input: {maxQueryCost: $c}) { maxQueryCost } }"
    body = await api.gql(set_limit, {"c": 150})
    assert body["data"]["updateOrganizationSettings"]["maxQueryCost"] == 150
    refused = await api.gql(page, role="teacher")
    assert _codes(refused) == ["QUERY_TOO_COMPLEX"]
    assert "limit of 150" in refused["errors"][0]["message"]
    assert refused["extensions"]["cost"]["maximumQueryCost"] == 150
    # The service's limit stays the ceiling: an organization cannot raise its share.
    await api.gql(set_limit, {"c": 500_000})
    body = await api.gql(page)
    assert body["extensions"]["cost"]["maximumQueryCost"] == LIMIT
    assert _codes(await api.gql(set_limit, {"c": 1})) == ["BAD_USER_INPUT"]


async def test_response_node_cap_stops_a_read_midway(api):
    await _children_sessions(api.world, 30)
    api.runtime.settings.graphql_max_nodes = 25
    body = await api.gql("{ sessions(first: 30) { edges { node { id } } } }")
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]
    assert "more than 25 objects" in body["errors"][0]["message"]


async def test_reads_have_a_wall_clock_budget_but_mutations_finish(api, monkeypatch):
    api.runtime.settings.graphql_timeout_seconds = 0.2
    original = type(api.world.service.collection).count

    async def slow_count(self, *args, **kwargs):
        await asyncio.sleep(0.5)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(type(api.world.service.collection), "count", slow_count)
    started = time.perf_counter()
    body = await api.gql("{ teachers { totalCount } }")
    assert time.perf_counter() - started < 0.45
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]
    assert "0.2 s budget" in body["errors"][0]["message"]
    # A mutation is never cut between two writes: it runs to its end.
    body = await api.gql(
        'mutation { createTeacher(input: {name: "Slow", email: "slow@example.com"}) { name } }'
    )
    assert body["data"]["createTeacher"]["name"] == "Slow"


BAD_BODIES = {
    "nested 1000 deep": b'{"query": "{ me { userId } }", "variables": {"x": '
    + b"[" * 1000
    + b"]" * 1000
    + b"}}",
    "nested 70 deep": b'{"query": "{ me { userId } }", "variables": {"x": '
    + b"[" * 70
    + b"]" * 70
    + b"}}",
    "lone surrogate in a variable": b'{"query": "query($n: String!) { teachers(filter: '
    b'{name: $n}) { totalCount } }", "variables": {"n": "\\ud800"}}',
    "lone surrogate in the query": b'{"query": "{ teachers(filter: {name: \\"\\ud800\\"}) '
    b'{ totalCount } }"}',
    "NaN": b'{"query": "{ me { userId } }", "variables": {"x": NaN}}',
    "Infinity": b'{"query": "{ me { userId } }", "variables": {"x": -Infinity}}',
    "not UTF-8": b'{"query": "{ me { userId } }", "variables": {"x": "\xff\xfe"}}',
    "not JSON": b"{not json",
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_malformed_bodies_are_400_with_a_json_error(api, name):
    response = await api.client.post(
        f"{api.base_url}/graphql",
        content=BAD_BODIES[name],
        headers={
            "Authorization": f"Bearer {api.token_for('admin')}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400, response.text
    assert _codes(response.json()) == ["BAD_USER_INPUT"]


async def test_escaped_surrogates_in_graphql_strings_are_bad_input(api):
    body = await api.gql('{ teachers(filter: {name: "\\uD800"}) { totalCount } }')
    assert _codes(body) == ["BAD_USER_INPUT"]


async def test_non_finite_and_invalid_text_never_reach_agent_tools(api):
    from app.tutoring.agent.tools import TOOLS

    admin = await api.world.as_role("admin")
    for arguments in (
        {
            "type": "teacher",
            "data": {"name": "X", "email": "x@example.com", "hourlyRate": float("nan")},
        },
        {"type": "teacher", "data": {"name": "\ud800", "email": "x@example.com"}},
        {
            "type": "teacher",
            "data": {"name": "X", "email": "x@example.com", "hourlyRate": float("inf")},
        },
    ):
        result = await TOOLS.call(admin, "entity.create", arguments)
        assert result["ok"] is False and result["error"]["code"] == "BAD_USER_INPUT"
    assert (await admin.query("teacher", where={"email": "x@example.com"})).items == []
    body = await api.gql("{ teachers(first: 100) { edges { node { hourlyRate name } } } }")
    assert "errors" not in body


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1800-01-01T00:00:00Z"],
)
async def test_dates_outside_the_service_range_are_bad_input_and_store_nothing(api, when):
    create = """mutation($g: ID!, $s: ID!, $at: DateTime) {
        createEntitlement(input: {guardianId: $g, studentId: $s, totalCredits: 3, expiresAt: $at})
        { id } }"""
    ids = api.world.ids
    body = await api.gql(create, {"g": ids["G1"], "s": ids["S1"], "at": when})
    assert _codes(body) == ["BAD_USER_INPUT"], body
    admin = await api.world.as_role("admin")
    assert (await admin.query("entitlement", where={"totalCredits": 3})).items == []
    book = """mutation($t: ID!, $s: ID!, $at: DateTime!) {
        bookSession(input: {teacherId: $t, studentId: $s, startTime: $at, durationMinutes: 60})
        { id } }"""
    body = await api.gql(book, {"t": ids["T1"], "s": ids["S1"], "at": when})
    assert _codes(body) == ["BAD_USER_INPUT"], body
    body = await api.gql(
        "query($at: DateTime) { sessions(filter: {startsBefore: $at}) { totalCount } }",
        {"at": when},
    )
    assert _codes(body) == ["BAD_USER_INPUT"], body


def _readme_operations() -> list[str]:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", readme, re.S)
    return [b for b in blocks if b.lstrip().startswith(("{", "query", "mutation"))]


async def test_the_readme_queries_are_within_the_default_limits(api):
    operations = _readme_operations()
    assert operations
    for operation in operations:
        body = await api.gql(operation)
        assert "QUERY_TOO_COMPLEX" not in _codes(body), operation
        assert body["extensions"]["cost"]["requestedQueryCost"] < LIMIT / 10


async def test_held_connections_are_closed_and_do_not_starve_others(api, monkeypatch, frozen_heap):
    monkeypatch.setattr(BoundedH11Protocol, "head_timeout", 0.5)
    host, port = api.base_url.removeprefix("http://").split(":")

    def hold(payload: bytes) -> socket.socket:
        sock = socket.create_connection((host, int(port)))
        sock.sendall(payload)
        sock.setblocking(False)
        return sock

    held = [hold(b"") for _ in range(30)]  # connect and say nothing
    held += [hold(b"POST /graphql HTTP/1.1\r\nHost: x\r\n") for _ in range(30)]  # slowloris
    started = time.perf_counter()
    response = await api.client.get(f"{api.base_url}/healthz")
    assert response.status_code == 200 and time.perf_counter() - started < 0.1
    await asyncio.sleep(1.0)

    def closed(sock: socket.socket) -> bool:
        try:
            return sock.recv(1024) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    assert all(closed(s) for s in held)
    for sock in held:
        sock.close()
    body = await api.gql("{ me { userId } }")
    assert body["data"]["me"]["userId"] == "u-admin"


async def test_a_slow_body_is_cut_off(api, monkeypatch):
    from app.graphql import gate

    monkeypatch.setattr(gate, "BODY_SECONDS", 0.3)
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    token = api.token_for("admin")
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n{"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), timeout=2)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(head.split(b"\r\n\r\n", 1)[1])["errors"][0]["extensions"]["code"] == (
        "BAD_USER_INPUT"
    )
