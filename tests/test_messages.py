"""``messages`` over HTTP: each user reads the messages written to the records they are linked
to (guardians their family's, teachers their own), admins every message; newest first, in
bounded pages, with the text as sent."""

from __future__ import annotations

import pytest

from app.platform.outbox import LoggingSender, Outbox
from app.tutoring.jobs.handlers import handlers
from tests.booking_world import at, book, pack, prepare

MESSAGES = """query($first: Int, $after: String, $status: MessageStatus, $from: DateTime,
                     $to: DateTime) {
  messages(first: $first, after: $after, status: $status, from: $from, to: $to) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id kind status channel recipientType recipientId subject body
                          sessionId entitlementId createdAt sentAt } } } }"""


@pytest.fixture
async def reminded(api, clock):
    """G1's session with T1 at Wednesday 10:00 Berlin and G2's with T2 at 12:00, and the
    reminders their jobs wrote when they came due."""
    world = api.world
    await prepare(world)
    admin = await world.as_role("admin")
    first = await book(admin, world, at(0), entitlement=await pack(world))
    second = await book(admin, world, at(2), teacher="T2", student="S2")
    await admin_pays(api, second)
    clock.now = at(-18)  # both reminders are due (20 hours ahead)
    await run_due_jobs(api)
    return {"G1": first.id, "G2": second.id}


async def admin_pays(api, session) -> None:
    body = await api.gql(
        'mutation($p: ID!) { recordPaymentSucceeded(paymentId: $p, providerReference: "r") { id } }',
        {"p": session.get("paymentId")},
    )
    assert "errors" not in body, body


async def run_due_jobs(api) -> None:
    """Runs every reminder that is due on the service's clock, as the worker would."""
    world = api.world
    jobs = world.service.jobs
    due = await world.service.store.collection("jobs").find(
        world.org, {"type": "session.reminder", "runAt": {"$lte": world.service.clock()}}
    )
    for job in due:
        await jobs.run(world.org, job["key"], handlers(world.service))


def _nodes(body: dict) -> list[dict]:
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["messages"]["edges"]]


async def test_a_guardian_reads_their_reminder_and_not_another_familys(api, reminded):
    ids = api.world.ids
    (mine,) = _nodes(await api.gql(MESSAGES, role="guardian"))
    assert mine["kind"] == "session_reminder" and mine["status"] == "QUEUED"
    assert (mine["recipientType"], mine["recipientId"]) == ("guardian", ids["G1"])
    assert mine["sessionId"] == reminded["G1"] and mine["channel"] == "whatsapp"
    # As sent: the session's time on the organization's clock (UTC by default).
    assert mine["subject"] == "Reminder: math session on Wednesday 4 November 2026, 09:00 (UTC)"
    assert mine["body"].startswith("Hello G1, this is a reminder of the math session")
    g2 = await api.gql(MESSAGES, token=api.token("u-g2", "guardian"))
    assert [m["recipientId"] for m in _nodes(g2)] == [ids["G2"]]
    assert reminded["G1"] not in {m["sessionId"] for m in _nodes(g2)}


async def test_a_teacher_reads_their_reminder_in_their_own_time_zone(api, reminded):
    ids = api.world.ids
    (mine,) = _nodes(await api.gql(MESSAGES, role="teacher"))
    assert (mine["recipientType"], mine["recipientId"]) == ("teacher", ids["T1"])
    assert mine["sessionId"] == reminded["G1"]
    assert "Wednesday 4 November 2026, 10:00 (Europe/Berlin)" in mine["subject"]
    t2 = _nodes(await api.gql(MESSAGES, token=api.token("u-t2", "teacher")))
    assert [(m["recipientId"], m["sessionId"]) for m in t2] == [(ids["T2"], reminded["G2"])]


async def test_admins_read_every_message_of_the_organization(api, reminded):
    admin = _nodes(await api.gql(MESSAGES, role="admin"))
    ids = api.world.ids
    assert sorted(m["recipientId"] for m in admin) == sorted(
        [ids["G1"], ids["G2"], ids["T1"], ids["T2"]]
    )


async def test_a_login_linked_to_no_record_has_no_messages(api, reminded):
    body = await api.gql(MESSAGES, token=api.token("u-nobody", "teacher"))
    assert body["data"]["messages"] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


async def test_pages_newest_first_without_repeats(api, reminded, clock):
    world = api.world
    admin = await world.as_role("admin")
    entitlement = await pack(world)
    # Three more of G1's sessions (Thursday 10:00 and 12:00, Friday 10:00 Berlin): the two on
    # Thursday are reminded at the same moment, the tie broken by id.
    for start in (at(24), at(26), at(48)):
        await book(admin, world, start, entitlement=entitlement)
    for moment in (at(6), at(28)):
        clock.now = moment
        await run_due_jobs(api)

    seen, after = [], None
    for expected in (2, 2):
        body = await api.gql(MESSAGES, {"first": 2, "after": after}, role="guardian")
        connection = body["data"]["messages"]
        assert connection["totalCount"] == 4 and len(connection["edges"]) == expected
        seen += [edge["node"] for edge in connection["edges"]]
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]
    assert connection["pageInfo"]["hasNextPage"] is False
    assert len({m["id"] for m in seen}) == 4
    created = [m["createdAt"] for m in seen]
    assert created == sorted(created, reverse=True)

    window = {"from": at(0).isoformat(), "to": at(10).isoformat()}
    assert len(_nodes(await api.gql(MESSAGES, window, role="guardian"))) == 2


async def test_status_filter_and_sent_time(api, reminded, clock):
    clock.advance(minutes=5)
    await Outbox(api.world.service.store, clock=clock).deliver(LoggingSender())
    sent = _nodes(await api.gql(MESSAGES, {"status": "SENT"}, role="guardian"))
    assert [m["status"] for m in sent] == ["SENT"]
    assert sent[0]["sentAt"] == clock.now.isoformat()
    assert _nodes(await api.gql(MESSAGES, {"status": "QUEUED"}, role="guardian")) == []


async def test_bad_page_arguments_are_bad_user_input(api):
    for variables, field in (({"first": -1}, "first"), ({"after": "nonsense"}, "after")):
        body = await api.gql(MESSAGES, variables, role="guardian")
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert field in error["extensions"]["fields"]
    body = await api.gql(MESSAGES, {"from": "1800-01-01T00:00:00+00:00"}, role="guardian")
    assert body["errors"][0]["extensions"]["fields"] == {"from": "out of range"}


async def test_a_page_is_costed_by_its_size(api):
    small = await api.gql("{ messages(first: 1) { edges { node { id } } } }", role="guardian")
    large = await api.gql("{ messages(first: 100) { edges { node { id } } } }", role="guardian")
    assert small["extensions"]["cost"]["requestedQueryCost"] == 1 + 1 * 2
    assert large["extensions"]["cost"]["requestedQueryCost"] == 1 + 100 * 2
