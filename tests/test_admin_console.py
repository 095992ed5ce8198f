"""The admin console over real HTTP: the audit trail and the jobs as bounded connections.

Who may call these is in ``tests/test_operation_table.py``; retrying and cancelling jobs in
``tests/test_job_admin.py``.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from app.platform.auth import mint_dev_token
from app.platform.console import AUDIT_ORDER, JOB_ORDER, AuditQuery, JobQuery
from app.platform.entities.query import cursor_condition, encode_cursor
from app.platform.jobs import JobStatus
from app.platform.packs import all_indexes
from app.platform.store import and_filters
from app.platform.store.shapes import shapes, uncovered
from app.tutoring.pack import PACKS
from tests.booking_world import at, book, pack, prepare
from tests.conftest import DEV_SECRET
from tests.world import NOW

AUDIT = """
query($entityType: String, $entityId: ID, $actorId: ID, $from: DateTime, $to: DateTime,
      $first: Int = 20, $after: String) {
  auditLog(entityType: $entityType, entityId: $entityId, actorId: $actorId, from: $from,
           to: $to, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id at action entityType entityId fields details
                          actor { userId roles system onBehalfOf } } }
  }
}"""

JOBS = """
query($status: [JobStatus!], $type: String, $subject: ID, $from: DateTime, $to: DateTime,
      $first: Int = 20, $after: String) {
  scheduledJobs(status: $status, type: $type, subject: $subject, from: $from, to: $to,
                first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id type runAt status idempotencyKey subjects payload attempts
                          retries lastError lastRunAt finishedAt } }
  }
}"""


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def nodes(body: dict, field: str) -> list[dict]:
    assert "errors" not in body, body["errors"]
    return [edge["node"] for edge in body["data"][field]["edges"]]


async def walk(api, document: str, field: str, size: int, token: str | None = None, **variables):
    """Every node, following endCursor page by page."""
    seen, after = [], None
    for _ in range(100):
        body = await api.gql(document, {**variables, "first": size, "after": after}, token=token)
        seen.extend(nodes(body, field))
        info = body["data"][field]["pageInfo"]
        if not info["hasNextPage"]:
            return seen, body["data"][field]["totalCount"]
        after = info["endCursor"]
    raise AssertionError("the pages never ended")


UPDATE_BIO = 'mutation($id: ID!) { updateTeacher(id: $id, input: {bio: "new bio"}) { id } }'


# -- the audit trail ---------------------------------------------------------------------


async def test_the_trail_is_newest_first_and_says_who_did_what(api, clock):
    t1 = api.world.ids["T1"]
    clock.advance(minutes=5)
    assert "errors" not in await api.gql(UPDATE_BIO, {"id": t1})
    entries = nodes(await api.gql(AUDIT, {"first": 100}), "auditLog")
    assert entries[0] == {
        "id": entries[0]["id"],
        "at": (NOW + timedelta(minutes=5)).isoformat(),
        "action": "update",
        "entityType": "teacher",
        "entityId": t1,
        "fields": ["bio"],
        "details": None,
        "actor": {"userId": "u-admin", "roles": ["admin"], "system": False, "onBehalfOf": None},
    }
    # The organization's set-up before it: entity creations by the system actor.
    assert {e["action"] for e in entries[1:]} >= {"create"}
    assert entries[-1]["actor"]["system"] is True
    times = [e["at"] for e in entries]
    assert times == sorted(times, reverse=True)


async def test_filters_by_type_entity_actor_and_time(api, clock):
    t1, g1 = api.world.ids["T1"], api.world.ids["G1"]
    clock.advance(minutes=5)
    await api.gql(UPDATE_BIO, {"id": t1})
    teachers = nodes(await api.gql(AUDIT, {"entityType": "teacher", "first": 100}), "auditLog")
    assert len(teachers) == 3 and {e["entityType"] for e in teachers} == {"teacher"}
    mine = nodes(await api.gql(AUDIT, {"entityId": t1}), "auditLog")
    assert [(e["action"], e["entityId"]) for e in mine] == [("update", t1), ("create", t1)]
    by_admin = nodes(await api.gql(AUDIT, {"actorId": "u-admin"}), "auditLog")
    assert [e["entityId"] for e in by_admin] == [t1]
    # [from, to): the update at NOW + 5 min is inside [NOW + 5 min, NOW + 6 min) only.
    later = {"from": (NOW + timedelta(minutes=5)).isoformat()}
    assert [e["action"] for e in nodes(await api.gql(AUDIT, later), "auditLog")] == ["update"]
    before = {"to": (NOW + timedelta(minutes=5)).isoformat(), "first": 100}
    earlier = nodes(await api.gql(AUDIT, before), "auditLog")
    assert earlier and by_admin[0]["id"] not in {e["id"] for e in earlier}
    nothing = {"entityId": g1, "actorId": "u-admin"}
    assert (await api.gql(AUDIT, nothing))["data"]["auditLog"]["totalCount"] == 0


async def test_pages_follow_each_other_without_gaps_or_repeats(api, clock):
    for minutes in (1, 2, 3):  # entries at different times, and many at the same time
        clock.advance(minutes=minutes)
        await api.gql(UPDATE_BIO, {"id": api.world.ids["T1"]})
    whole = nodes(await api.gql(AUDIT, {"first": 100}), "auditLog")
    paged, total = await walk(api, AUDIT, "auditLog", 4)
    assert [e["id"] for e in paged] == [e["id"] for e in whole]
    assert total == len(whole) == len({e["id"] for e in whole})
    assert len(whole) > 12  # several pages


async def test_an_admin_never_reads_another_organizations_trail(api, other_world):
    theirs = mint_dev_token(DEV_SECRET, org=other_world.org, user="u-admin", roles=["admin"])
    mine, _ = await walk(api, AUDIT, "auditLog", 100)
    their_entries, _ = await walk(api, AUDIT, "auditLog", 100, token=theirs)
    assert mine and their_entries
    assert not {e["id"] for e in mine} & {e["id"] for e in their_entries}
    assert not {e["entityId"] for e in mine} & set(other_world.ids.values())
    foreign = {"entityId": other_world.ids["T1"]}
    assert (await api.gql(AUDIT, foreign))["data"]["auditLog"]["totalCount"] == 0
    # A cursor made in the other organization only positions within one's own.
    cursor = (await api.gql(AUDIT, {"first": 1}, token=theirs))["data"]["auditLog"]
    after = cursor["pageInfo"]["endCursor"]
    rest = nodes(await api.gql(AUDIT, {"first": 100, "after": after}), "auditLog")
    assert not {e["id"] for e in rest} & {e["id"] for e in their_entries}


@pytest.mark.parametrize(
    "variables",
    [
        {"from": "2026-11-03T00:00:00+00:00", "to": "2026-11-02T00:00:00+00:00"},
        {"from": "2026-11-02T00:00:00+00:00", "to": "2026-11-02T00:00:00+00:00"},
        {"from": "2026-11-02T00:00:00"},  # no offset
        {"to": "0001-01-01T00:00:00+14:00"},
        {"from": "yesterday"},
        {"first": -1},
        {"after": "not-a-cursor"},
        {"entityId": "x" * 201},
    ],
)
async def test_bad_audit_arguments_are_bad_user_input(api, variables):
    assert codes(await api.gql(AUDIT, variables)) == ["BAD_USER_INPUT"]


# -- jobs ------------------------------------------------------------------------------------


async def test_jobs_filter_by_subject_type_status_and_run_time(api, w):
    admin = await w.as_role("admin")
    session = await book(admin, w, at(2), entitlement=await pack(w))
    other = await book(
        admin, w, at(26), student="S2", entitlement=await pack(w, student="S2", guardian="G2")
    )
    about = nodes(await api.gql(JOBS, {"subject": session.id}), "scheduledJobs")
    assert sorted(j["type"] for j in about) == [
        "session.no_show_check", "session.reminder", "session.reminder",
    ]  # fmt: skip
    assert all(j["id"] == j["idempotencyKey"] and session.id in j["subjects"] for j in about)
    assert {j["status"] for j in about} == {"PENDING"}  # no queue in this test: recorded only
    assert [j["runAt"] for j in about] == sorted(j["runAt"] for j in about)
    reminder = next(j for j in about if j["type"] == "session.reminder")
    assert reminder["payload"]["sessionId"] == session.id
    assert reminder["attempts"] == 0 and reminder["retries"] == 0

    everything = nodes(await api.gql(JOBS, {"first": 100}), "scheduledJobs")
    assert {j["id"] for j in about} < {j["id"] for j in everything}
    assert any(other.id in j["subjects"] for j in everything)
    reminders = nodes(await api.gql(JOBS, {"type": "session.reminder"}), "scheduledJobs")
    assert len(reminders) == 4 and {j["type"] for j in reminders} == {"session.reminder"}
    both = {"type": "session.reminder", "subject": other.id, "status": ["PENDING", "QUEUED"]}
    assert len(nodes(await api.gql(JOBS, both), "scheduledJobs")) == 2
    assert nodes(await api.gql(JOBS, {"status": ["DONE", "FAILED"]}), "scheduledJobs") == []
    window = {"from": reminder["runAt"], "to": at(2).isoformat(), "subject": session.id}
    assert [j["type"] for j in nodes(await api.gql(JOBS, window), "scheduledJobs")] == [
        "session.reminder", "session.reminder",
    ]  # fmt: skip
    paged, total = await walk(api, JOBS, "scheduledJobs", 2)
    assert [j["id"] for j in paged] == [j["id"] for j in everything] and total == len(everything)


async def test_an_admin_never_lists_another_organizations_jobs(api, w, other_world):
    theirs = await other_world.as_role("admin")
    await prepare(other_world)
    their_session = await book(theirs, other_world, at(2))
    listed = nodes(await api.gql(JOBS, {"first": 100}), "scheduledJobs")
    assert all(their_session.id not in j["subjects"] for j in listed)
    foreign = await api.gql(JOBS, {"subject": their_session.id})
    assert foreign["data"]["scheduledJobs"]["totalCount"] == 0


@pytest.mark.parametrize(
    "variables",
    [
        {"status": ["NOPE"]},
        {"status": ["pending"]},  # the enum is upper case
        {"from": "2026-11-05T00:00:00+00:00", "to": "2026-11-04T00:00:00+00:00"},
        {"first": -5},
        {"type": "t" * 500},
    ],
)
async def test_bad_job_arguments_are_bad_user_input(api, variables):
    assert codes(await api.gql(JOBS, variables)) == ["BAD_USER_INPUT"]


async def test_a_cursor_of_one_list_is_refused_by_the_other(api):
    audit = (await api.gql(AUDIT, {"first": 1}))["data"]["auditLog"]["pageInfo"]["endCursor"]
    assert codes(await api.gql(JOBS, {"after": audit})) == ["BAD_USER_INPUT"]


# -- cost and indexes ------------------------------------------------------------------------


async def test_the_connections_are_costed_by_their_page_size(api):
    """Like every connection: first multiplies what is selected under edges."""
    cases = {
        "{ auditLog(first: 100) { edges { node { id actor { userId } } } } }": 1 + 100 * 3,
        "{ auditLog { totalCount edges { node { id } } } }": 1 + 20 * 2,
        "{ scheduledJobs(first: 50) { edges { cursor node { id status } } } }": 1 + 50 * 2,
        "{ a: scheduledJobs(first: 100) { edges { node { id } } } "
        "  b: auditLog(first: 100) { edges { node { id } } } }": 2 * (1 + 100 * 2),
    }
    for document, expected in cases.items():
        body = await api.gql(document)
        assert "errors" not in body, body
        assert body["extensions"]["cost"]["requestedQueryCost"] == expected, document
    # An organization's own lower limit applies to them as to every operation.
    limit = "mutation { updateOrganizationSettings(input: {maxQueryCost: 500}) { maxQueryCost } }"
    assert "errors" not in await api.gql(limit)
    page = "auditLog(first: 100) { edges { node { actor { userId } } } }"
    assert "errors" not in await api.gql(f"{{ {page} }}")  # 301
    assert codes(await api.gql(f"{{ a: {page} b: {page} }}")) == ["QUERY_TOO_COMPLEX"]  # 602


def _all_shapes(collection: str, queries, order) -> list:
    """The shape of every page (first and later) and count each query sends."""
    cursor = encode_cursor({"at": NOW, "runAt": NOW, "_id": "x"}, spec=order)
    out = []
    for query in queries:
        where = {"organizationId": "o", **query.filter()}
        out += shapes(collection, where)  # totalCount
        out += shapes(collection, where, order)
        out += shapes(collection, and_filters(where, cursor_condition(cursor, order)), order)
    return out


def test_every_combination_of_filters_is_served_by_a_declared_index():
    indexes = all_indexes(list(PACKS.values()))
    span = (None, NOW), (NOW, None), (NOW, NOW + timedelta(days=1)), (None, None)
    audits = [
        AuditQuery(t, e, a, since, until)
        for t, e, a in itertools.product((None, "session"), (None, "id"), (None, "u"))
        for since, until in span
    ]
    jobs = [
        JobQuery(s, t, subject, since, until)
        for s, t, subject in itertools.product(
            ((), (JobStatus.FAILED,), (JobStatus.FAILED, JobStatus.SKIPPED)),
            (None, "session.reminder"),
            (None, "id"),
        )
        for since, until in span
    ]
    assert uncovered(_all_shapes("audit", audits, AUDIT_ORDER), indexes) == []
    assert uncovered(_all_shapes("jobs", jobs, JOB_ORDER), indexes) == []
