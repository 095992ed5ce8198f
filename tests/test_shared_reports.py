"""Shared reports over HTTP: a guardian reads a completed session's report once its teacher
(or an admin) shares it, and no longer once it is unshared -- wherever session data flows:
a session by id, lists, relations and the agent's tools. The rule is a conditional entry of
the guardian role's read mask (data), applied by the engine; these tests only look from
outside."""

from __future__ import annotations

import pytest

from app.platform.permissions import ReadMask
from app.tutoring.roles import GUARDIAN_ROLE, SESSION_FIELDS_FOR_GUARDIANS
from tests.booking_world import at, pack, prepare

REPORT = "Fractions are solid; next time: word problems."
BOOK = """mutation($input: BookSessionInput!) { bookSession(input: $input) { id } }"""
SHARE = "mutation($id: ID!) { shareSessionReport(id: $id) { reportShared reportSharedAt reportSharedBy reportContent } }"
UNSHARE = "mutation($id: ID!) { unshareSessionReport(id: $id) { reportShared reportSharedAt reportSharedBy reportContent } }"
SESSION = "query($id: ID!) { session(id: $id) { reportShared reportSharedAt reportSharedBy reportContent } }"
LISTED = "{ sessions(filter: {status: [COMPLETED]}) { edges { node { id reportContent } } } }"
RELATION = "query($s: ID!) { student(id: $s) { sessions { edges { node { id reportContent } } } } }"
AGENT = 'mutation($a: JSON!) { callAgentTool(name: "%s", arguments: $a) }'


def _codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def _ok(body: dict) -> dict:
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
async def completed(api, clock):
    """Teacher T1 taught S1 (G1's child) and completed the session with a report."""
    await prepare(api.world)
    ids = api.world.ids
    entitlement = await pack(api.world)
    booked = await api.gql(
        BOOK,
        {"input": {"teacherId": ids["T1"], "studentId": ids["S1"], "startTime": at(2).isoformat(),
                   "durationMinutes": 60, "entitlementId": entitlement}},
    )  # fmt: skip
    sid = _ok(booked)["bookSession"]["id"]
    clock.now = at(2)
    start = "mutation($id: ID!) { startSession(id: $id) { status } }"
    _ok(await api.gql(start, {"id": sid}, role="teacher"))
    done = await api.gql(
        "mutation($id: ID!, $r: String!) { completeSession(id: $id, report: $r) { reportShared } }",
        {"id": sid, "r": REPORT},
        role="teacher",
    )
    assert _ok(done)["completeSession"] == {"reportShared": False}
    return sid


async def _guardian_sees(api, sid: str) -> set[str | None]:
    """The report as the guardian gets it through each path session data takes."""
    seen = set()
    seen.add(_ok(await api.gql(SESSION, {"id": sid}, role="guardian"))["session"]["reportContent"])
    listed = _ok(await api.gql(LISTED, role="guardian"))["sessions"]["edges"]
    seen |= {e["node"]["reportContent"] for e in listed if e["node"]["id"] == sid}
    related = await api.gql(RELATION, {"s": api.world.ids["S1"]}, role="guardian")
    edges = _ok(related)["student"]["sessions"]["edges"]
    seen |= {e["node"]["reportContent"] for e in edges if e["node"]["id"] == sid}
    got = _ok(await api.gql(AGENT % "entity.get", {"a": {"type": "session", "id": sid}},
                            role="guardian"))["callAgentTool"]  # fmt: skip
    seen.add(got["result"].get("reportContent"))
    queried = _ok(await api.gql(AGENT % "entity.query", {"a": {"type": "session"}},
                                role="guardian"))["callAgentTool"]  # fmt: skip
    seen |= {i.get("reportContent") for i in queried["result"]["items"] if i["id"] == sid}
    return seen


async def test_guardian_reads_the_report_only_while_it_is_shared(api, completed):
    sid = completed
    unshared = _ok(await api.gql(SESSION, {"id": sid}, role="guardian"))["session"]
    assert unshared == {"reportShared": False, "reportSharedAt": None, "reportSharedBy": None,
                        "reportContent": None}  # fmt: skip
    assert await _guardian_sees(api, sid) == {None}

    shared = _ok(await api.gql(SHARE, {"id": sid}, role="teacher"))["shareSessionReport"]
    assert shared["reportShared"] is True and shared["reportSharedBy"] == "u-t1"
    assert shared["reportSharedAt"] == at(2).isoformat()
    assert await _guardian_sees(api, sid) == {REPORT}
    as_guardian = _ok(await api.gql(SESSION, {"id": sid}, role="guardian"))["session"]
    assert as_guardian["reportShared"] is True and as_guardian["reportSharedBy"] is None

    hidden = _ok(await api.gql(UNSHARE, {"id": sid}, role="teacher"))["unshareSessionReport"]
    assert hidden == {"reportShared": False, "reportSharedAt": None, "reportSharedBy": None,
                      "reportContent": REPORT}  # fmt: skip
    assert await _guardian_sees(api, sid) == {None}


async def test_sharing_is_idempotent_and_keeps_who_shared_first(api, completed, clock):
    sid = completed
    first = _ok(await api.gql(SHARE, {"id": sid}, role="teacher"))["shareSessionReport"]
    clock.advance(hours=1)
    again = _ok(await api.gql(SHARE, {"id": sid}, role="admin"))["shareSessionReport"]
    assert again == first
    _ok(await api.gql(UNSHARE, {"id": sid}, role="admin"))
    twice = _ok(await api.gql(UNSHARE, {"id": sid}, role="admin"))["unshareSessionReport"]
    assert twice["reportShared"] is False
    entries = await api.world.service.audit.for_entity(api.world.org, sid)
    moves = [(e["action"], e["actor"].get("onBehalfOf"), e["fields"]) for e in entries]
    shared_fields = ["reportShared", "reportSharedAt", "reportSharedBy"]
    assert moves[-2:] == [  # the repeated calls wrote nothing
        ("update", "u-t1", shared_fields),
        ("update", "u-admin", shared_fields),
    ], moves


async def test_a_guardian_cannot_learn_an_unshared_report_by_filtering(api, completed):
    """reportContent is visible to guardians on some sessions only, so it is no filter of
    theirs: a filter would answer "does the hidden report contain X?"."""
    sid = completed
    for shared in (False, True):
        probe = await api.gql(
            AGENT % "entity.query",
            {"a": {"type": "session", "filters": {"reportContent": {"contains": "Fractions"}}}},
            role="guardian",
        )
        result = _ok(probe)["callAgentTool"]
        assert result["ok"] is False and result["error"]["code"] == "FORBIDDEN", result
        if not shared:
            _ok(await api.gql(SHARE, {"id": sid}, role="teacher"))
    # Teachers and admins see every report, so for them the filter is allowed.
    found = await api.gql(
        AGENT % "entity.query",
        {"a": {"type": "session", "filters": {"reportContent": {"contains": "Fractions"}}}},
        role="teacher",
    )
    assert [i["id"] for i in _ok(found)["callAgentTool"]["result"]["items"]] == [sid]


async def test_the_rule_is_the_organizations_data(api, completed):
    """An organization that drops the conditional entry from its guardian role hides shared
    reports again from the next request on (the engine holds no rule of its own)."""
    sid = completed
    _ok(await api.gql(SHARE, {"id": sid}, role="teacher"))
    assert await _guardian_sees(api, sid) == {REPORT}
    world = api.world
    strict = GUARDIAN_ROLE.model_copy(
        update={"read_masks": {**GUARDIAN_ROLE.read_masks,
                               "session": ReadMask(mode="whitelist",
                                                   fields=SESSION_FIELDS_FOR_GUARDIANS)}}
    )  # fmt: skip
    await world.service.roles.replace(world.org, strict)
    assert await _guardian_sees(api, sid) == {None}


async def test_who_may_share(api, completed):
    sid = completed
    ids = api.world.ids
    assert _codes(await api.gql(SHARE, {"id": sid}, role="guardian")) == ["FORBIDDEN"]
    other = api.token("u-t2", "teacher")  # not their session: as if it did not exist
    assert _codes(await api.gql(SHARE, {"id": sid}, token=other)) == ["NOT_FOUND"]
    assert _codes(await api.gql(SHARE, {"id": ids["X1"]}, role="teacher")) == [
        "INVALID_TRANSITION"  # X1 is scheduled: no report to share yet
    ]
    # A teacher who is also the guardian shares as the teacher of their own sessions only.
    admin = await api.world.as_role("admin")
    await admin.update("guardian", ids["G1"], {"userId": "u-t2"})  # T2 is G1 as well
    both = api.token("u-t2", "teacher", "guardian")
    assert _codes(await api.gql(SHARE, {"id": sid}, token=both)) == ["FORBIDDEN"]
    assert _ok(await api.gql(SESSION, {"id": sid}, token=both))["session"]["reportContent"] is None
