"""Subscriptions over real websockets: each subscriber gets the events of its own scope, read
with its own masks, in order; nothing of other families; one ``removed`` when a document
leaves the scope, then silence."""

from __future__ import annotations

from tests.live_client import LiveClient

SESSIONS = """subscription($filter: SessionFilter, $after: Int) {
  sessionChanged(filter: $filter, after: $after) {
    sequence kind removed id
    session { id status teacherNotes guardianNotes reportContent guardianId teacherId
              student { name notes } }
  }
}"""
PAY = (
    'mutation($p: ID!) { recordPaymentSucceeded(paymentId: $p, providerReference: "r") { status } }'
)
CANCEL = 'mutation($id: ID!) { cancelSession(id: $id, reason: "ill") { status } }'
NOTE = 'mutation($id: ID!, $n: String = "bring a ruler") { updateSession(id: $id, input: {teacherNotes: $n}) { id } }'
MOVE = "mutation($id: ID!, $g: ID!) { updateStudent(id: $id, input: {guardianId: $g}) { id } }"
MEETING = 'mutation($id: ID!) { updateSession(id: $id, input: {guardianNotes: "see you"}) { id } }'


async def test_a_guardian_follows_their_childs_booking_payment_and_cancellation(live_server):
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
    ):
        await g1.subscribe(SESSIONS)
        booked = await api.book("guardian")  # G1 books for S1
        await api.book(token=api.token("u-g2", "guardian"), student="S2", teacher="T2")
        await api.gql(PAY, {"p": booked["paymentId"]})
        await api.gql(NOTE, {"id": booked["id"]}, role="teacher")
        await api.gql(CANCEL, {"id": booked["id"]}, role="guardian")
        events = await g1.events("sessionChanged", 4)
        await g1.nothing()  # the other family's booking never arrives
    assert [e["kind"] for e in events] == ["BOOKED", "PAID", "UPDATED", "CANCELLED"]
    assert all(e["id"] == booked["id"] and not e["removed"] for e in events)
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == 4
    assert [e["session"]["status"] for e in events] == [
        "PENDING_PAYMENT",
        "SCHEDULED",
        "SCHEDULED",
        "CANCELLED",
    ]
    for event in events:  # the guardian's masks, on every event
        session = event["session"]
        assert session["teacherNotes"] is None and session["reportContent"] is None
        assert session["guardianId"] == api.world.ids["G1"]
        assert session["student"] == {"name": "S1", "notes": None}


async def test_a_teacher_gets_their_own_sessions_without_guardian_fields(live_server):
    async with live_server() as api, LiveClient.connect(api.ws_url, api.token_for("teacher")) as t1:
        await t1.subscribe(SESSIONS)
        await api.book("guardian")  # with T1
        await api.book(token=api.token("u-g2", "guardian"), student="S2", teacher="T2")
        x1 = api.world.ids["X1"]
        await api.gql(MEETING, {"id": x1}, role="guardian")  # a guardian's note on T1's session
        booked, noted = await t1.events("sessionChanged", 2)
        await t1.nothing()
    assert booked["kind"] == "BOOKED" and booked["session"]["teacherId"] == api.world.ids["T1"]
    assert noted["kind"] == "UPDATED" and noted["id"] == x1
    assert noted["session"]["teacherNotes"] == "teacher-only note"
    for event in (booked, noted):
        assert event["session"]["guardianNotes"] is None
        assert event["session"]["guardianId"] is None
        assert event["session"]["student"]["notes"] is None


async def test_an_admin_gets_everything(live_server):
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("admin")) as admin,
    ):
        await admin.subscribe(SESSIONS)
        mine = await api.book("guardian")
        theirs = await api.book(token=api.token("u-g2", "guardian"), student="S2", teacher="T2")
        await api.gql(NOTE, {"id": mine["id"]}, role="teacher")
        events = await admin.events("sessionChanged", 3)
    assert [e["id"] for e in events] == [mine["id"], theirs["id"], mine["id"]]
    assert events[2]["session"]["teacherNotes"] == "bring a ruler"
    assert events[0]["session"]["student"]["notes"] == "internal note"


async def test_a_student_moved_to_another_guardian_is_removed_once_then_silent(live_server):
    ids = None
    async with live_server() as api:
        ids = api.world.ids
        async with (
            LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
            LiveClient.connect(api.ws_url, api.token("u-g2", "guardian")) as g2,
        ):
            await g1.subscribe(SESSIONS)
            await g2.subscribe(SESSIONS)
            await api.gql(MOVE, {"id": ids["S1"], "g": ids["G2"]})
            # X1 (S1's session) was G1's: one last event, without the session
            (removed,) = await g1.events("sessionChanged", 1)
            assert removed["removed"] is True and removed["id"] == ids["X1"]
            assert removed["session"] is None
            # and it now belongs to G2, who sees it arrive
            (arrived,) = await g2.events("sessionChanged", 1)
            assert arrived["id"] == ids["X1"] and not arrived["removed"]
            assert arrived["session"]["guardianId"] == ids["G2"]
            # further changes reach G2 only
            await api.gql(NOTE, {"id": ids["X1"]}, role="teacher")
            (later,) = await g2.events("sessionChanged", 1)
            assert later["kind"] == "UPDATED"
            await g1.nothing()
        # the old guardian's queries agree: the session is out of reach
        body = await api.gql("query($id: ID!) { session(id: $id) { id } }", {"id": ids["X1"]})
        assert body["data"]["session"]["id"] == ids["X1"]  # admin
        body = await api.gql(
            "query($id: ID!) { session(id: $id) { id } }", {"id": ids["X1"]}, role="guardian"
        )
        assert body["data"]["session"] is None


async def test_a_filter_narrows_the_events_and_leaving_it_is_a_removal(live_server):
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
    ):
        await g1.subscribe(SESSIONS, {"filter": {"status": ["PENDING_PAYMENT"]}})
        booked = await api.book("guardian")
        await api.gql(NOTE, {"id": api.world.ids["X1"]}, role="teacher")  # X1 is SCHEDULED
        await api.gql(PAY, {"p": booked["paymentId"]})
        first, last = await g1.events("sessionChanged", 2)
        await g1.nothing()
    assert (first["kind"], first["removed"]) == ("BOOKED", False)
    assert (last["kind"], last["removed"], last["session"]) == ("PAID", True, None)


async def test_a_role_change_applies_to_the_next_event(live_server):
    """Events are read as the subscriber at the time of the event: an organization that
    hides guardianNotes from guardians (a role edit) hides them from the next event on."""
    from app.tutoring.roles import GUARDIAN_ROLE, SESSION_FIELDS_FOR_GUARDIANS

    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
    ):
        x1 = api.world.ids["X1"]
        await g1.subscribe(SESSIONS)
        await api.gql(NOTE, {"id": x1}, role="teacher")
        (before,) = await g1.events("sessionChanged", 1)
        roles = api.world.service.store.collection("roles")
        visible = [f for f in SESSION_FIELDS_FOR_GUARDIANS if f != "guardianNotes"]
        mask = {
            **GUARDIAN_ROLE.model_dump(by_alias=True)["readMasks"]["session"],
            "fields": visible,
        }
        await roles.update_one(
            api.world.org, {"name": "guardian"}, {"$set": {"readMasks.session": mask}}
        )
        await api.world.service.states.changed(api.world.org)
        await api.gql(NOTE, {"id": x1, "n": "another note"}, role="teacher")
        (after,) = await g1.events("sessionChanged", 1)
    assert before["session"]["guardianNotes"] == "guardian note"
    assert after["session"]["guardianNotes"] is None


async def test_packs_and_payments_have_their_own_subscriptions(live_server):
    entitlements = (
        "subscription { entitlementChanged { kind id entitlement { remainingCredits } } }"
    )
    payments = "subscription { paymentChanged { kind id payment { status amount } } }"
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
    ):
        await g1.subscribe(entitlements, id="packs")
        await g1.subscribe(payments, id="payments")
        booked = await api.book("guardian")
        await api.gql(PAY, {"p": booked["paymentId"]})
        book_with_pack = (
            """mutation($input: BookSessionInput!) { bookSession(input: $input) { id } }"""
        )
        ids = api.world.ids
        await api.gql(
            book_with_pack,
            {
                "input": {
                    "teacherId": ids["T1"],
                    "studentId": ids["S1"],
                    "startTime": "2026-11-04T13:00:00+00:00",
                    "durationMinutes": 60,
                    "entitlementId": ids["E1"],
                }
            },
            role="guardian",
        )
        got = [await g1.receive() for _ in range(3)]
    by_id = {m["id"]: [] for m in got}
    for m in got:
        by_id[m["id"]].append(next(iter(m["payload"]["data"].values())))
    assert [e["kind"] for e in by_id["payments"]] == ["CREATED", "PAID"]
    assert by_id["payments"][1]["payment"]["status"] == "PAID"
    assert [(e["kind"], e["id"]) for e in by_id["packs"]] == [("RESERVED", ids["E1"])]
