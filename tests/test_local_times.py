"""Local times over HTTP: every DateTime stays UTC, and its ``local...(tz:)`` sibling gives the
same instant on the clocks of the zone the client names, across daylight-saving changes in
both directions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.booking_world import at, book, pack, prepare

LOCAL = "{ dateTime timeZone offsetMinutes date time dayOfWeek }"


async def _session_at(api, start: datetime) -> str:
    ids = api.world.ids
    system = await api.world.system()
    session = await system.create(
        "session",
        {"subject": "math"},
        server_fields={
            "teacherId": ids["T1"],
            "studentId": ids["S1"],
            "guardianId": ids["G1"],
            "startTime": start,
            "duration": 60,
            "status": "scheduled",
        },
    )
    return session.id


async def _local_start(api, start: datetime, tz: str, role: str = "admin") -> dict:
    query = f"""query($id: ID!, $tz: String!) {{ session(id: $id) {{
      startTime localStartTime(tz: $tz) {LOCAL} }} }}"""
    body = await api.gql(query, {"id": await _session_at(api, start), "tz": tz}, role=role)
    assert "errors" not in body, body
    return body["data"]["session"]


# (UTC instant, zone, local ISO time, offset minutes): the days around each change.
DST = [
    # Europe/Berlin springs forward on 2026-03-29 at 02:00 (to 03:00) ...
    ("2026-03-28T09:00:00+00:00", "Europe/Berlin", "2026-03-28T10:00:00+01:00", 60),
    ("2026-03-29T00:30:00+00:00", "Europe/Berlin", "2026-03-29T01:30:00+01:00", 60),
    ("2026-03-29T01:30:00+00:00", "Europe/Berlin", "2026-03-29T03:30:00+02:00", 120),
    ("2026-03-29T08:00:00+00:00", "Europe/Berlin", "2026-03-29T10:00:00+02:00", 120),
    # ... and falls back on 2026-10-25 at 03:00 (to 02:00): 02:30 happens twice.
    ("2026-10-25T00:30:00+00:00", "Europe/Berlin", "2026-10-25T02:30:00+02:00", 120),
    ("2026-10-25T01:30:00+00:00", "Europe/Berlin", "2026-10-25T02:30:00+01:00", 60),
    # America/New_York: forward on 2026-03-08 at 02:00, back on 2026-11-01 at 02:00.
    ("2026-03-08T06:30:00+00:00", "America/New_York", "2026-03-08T01:30:00-05:00", -300),
    ("2026-03-08T07:30:00+00:00", "America/New_York", "2026-03-08T03:30:00-04:00", -240),
    ("2026-11-01T05:30:00+00:00", "America/New_York", "2026-11-01T01:30:00-04:00", -240),
    ("2026-11-01T06:30:00+00:00", "America/New_York", "2026-11-01T01:30:00-05:00", -300),
    # Across the date line: still Sunday in UTC, already Monday in Auckland.
    ("2026-11-01T20:00:00+00:00", "Pacific/Auckland", "2026-11-02T09:00:00+13:00", 780),
]


@pytest.mark.parametrize(("instant", "tz", "local", "offset"), DST)
async def test_session_start_in_a_named_zone_across_dst(api, instant, tz, local, offset):
    session = await _local_start(api, datetime.fromisoformat(instant), tz)
    assert session["startTime"] == instant  # the DateTime field stays UTC
    shown = session["localStartTime"]
    assert shown["dateTime"] == local and shown["offsetMinutes"] == offset
    assert shown["timeZone"] == tz
    assert shown["date"] == local[:10] and shown["time"] == local[11:19]
    weekday = datetime.fromisoformat(local).weekday()
    assert shown["dayOfWeek"] == (weekday + 1) % 7


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../../etc/passwd", "x" * 200])
async def test_an_unknown_zone_is_bad_user_input_naming_tz(api, tz):
    query = "query($tz: String!) { sessions(first: 1) { edges { node { localStartTime(tz: $tz) { dateTime } } } } }"
    body = await api.gql(query, {"tz": tz})
    assert body["errors"], body
    for error in body["errors"]:
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert list(error["extensions"]["fields"]) == ["tz"]


async def test_a_hidden_time_has_a_null_local_sibling(api):
    """A teacher does not see a session's cancelledAt, nor therefore its local form."""
    query = """query($id: ID!) { session(id: $id) {
      cancelledAt localCancelledAt(tz: "Europe/Berlin") { dateTime }
      startTime localStartTime(tz: "Europe/Berlin") { dateTime } } }"""
    body = await api.gql(query, {"id": api.world.ids["X1"]}, role="teacher")
    session = body["data"]["session"]
    assert session["cancelledAt"] is None and session["localCancelledAt"] is None
    assert session["localStartTime"]["dateTime"] == "2026-11-04T13:00:00+01:00"


async def test_every_type_with_times_has_local_siblings(api):
    ids = api.world.ids
    await prepare(api.world)
    booked = await book(await api.world.as_role("admin"), api.world, at(0), entitlement=ids["E1"])
    tz = '"Asia/Tokyo"'
    query = f"""query($p: ID!, $e: ID!, $x: ID!, $s: ID!) {{
      payment(id: $p) {{ paidAt localPaidAt(tz: {tz}) {{ dateTime }}
                         failedAt localFailedAt(tz: {tz}) {{ dateTime }}
                         localCreatedAt(tz: {tz}) {{ dateTime }} }}
      entitlement(id: $e) {{ expiresAt localExpiresAt(tz: {tz}) {{ dateTime }}
                             localUpdatedAt(tz: {tz}) {{ dateTime }} }}
      session(id: $x) {{ localHoldExpiresAt(tz: {tz}) {{ dateTime }}
                         localStartedAt(tz: {tz}) {{ dateTime }}
                         localCompletedAt(tz: {tz}) {{ dateTime }} }}
      scheduledJobs(subject: $s) {{ edges {{ node {{ runAt localRunAt(tz: {tz}) {{ dateTime }} }} }} }}
      auditLog(first: 1) {{ edges {{ node {{ at localAt(tz: {tz}) {{ dateTime }} }} }} }}
    }}"""
    body = await api.gql(query, {"p": ids["P1"], "e": ids["E1"], "x": ids["X1"], "s": booked.id})
    assert "errors" not in body, body
    data = body["data"]
    assert data["payment"]["localPaidAt"]["dateTime"] == "2026-11-02T21:00:00+09:00"
    assert data["payment"]["localFailedAt"]["dateTime"] == "2026-11-02T21:00:00+09:00"
    assert data["payment"]["localCreatedAt"]["dateTime"].endswith("+09:00")
    assert data["entitlement"]["localExpiresAt"]["dateTime"] == "2027-01-01T21:00:00+09:00"
    assert data["entitlement"]["localUpdatedAt"]["dateTime"].endswith("+09:00")
    for field in ("localHoldExpiresAt", "localStartedAt", "localCompletedAt"):
        assert data["session"][field]["dateTime"] == "2026-11-02T21:00:00+09:00"
    jobs = [e["node"] for e in data["scheduledJobs"]["edges"]]
    assert jobs
    for job in jobs:
        local = datetime.fromisoformat(job["localRunAt"]["dateTime"])
        assert (
            local == datetime.fromisoformat(job["runAt"]) and local.utcoffset().seconds == 9 * 3600
        )
    (entry,) = [e["node"] for e in data["auditLog"]["edges"]]
    assert datetime.fromisoformat(entry["localAt"]["dateTime"]) == datetime.fromisoformat(
        entry["at"]
    )


async def test_slots_and_messages_have_local_siblings(api, clock):
    await prepare(api.world)
    query = """query($t: ID!, $f: DateTime!, $to: DateTime!) {
      availableSlots(teacherId: $t, from: $f, to: $to, durationMinutes: 60) {
        start end localStart(tz: "Europe/Berlin") { time } localEnd(tz: "Europe/Berlin") { time } } }"""
    variables = {"t": api.world.ids["T1"], "f": at(-9).isoformat(), "to": at(15).isoformat()}
    slots = (await api.gql(query, variables, role="guardian"))["data"]["availableSlots"]
    assert slots[0]["start"] == "2026-11-04T08:00:00+00:00"  # UTC, as before
    assert (slots[0]["localStart"]["time"], slots[-1]["localEnd"]["time"]) == (
        "09:00:00",
        "17:00:00",
    )

    await api.world.service.store.collection("messages").insert_one(
        api.world.org,
        {"_id": "m1", "idempotencyKey": "k", "recipientType": "guardian",
         "recipientId": api.world.ids["G1"], "channel": "email", "template": "t",
         "variables": {}, "status": "sent", "createdAt": at(-1), "sentAt": at(0)},
    )  # fmt: skip
    query = """{ messages { edges { node { createdAt localCreatedAt(tz: "Europe/Berlin") { dateTime }
                                            localSentAt(tz: "Europe/Berlin") { dateTime } } } } }"""
    (edge,) = (await api.gql(query, role="guardian"))["data"]["messages"]["edges"]
    assert edge["node"]["localCreatedAt"]["dateTime"] == "2026-11-04T09:00:00+01:00"
    assert edge["node"]["localSentAt"]["dateTime"] == "2026-11-04T10:00:00+01:00"


async def test_recurring_skipped_weeks_are_reported_in_utc(api):
    world = api.world
    await prepare(world)
    entitlement = await pack(
        world,
        credits=1,
        preferredTeacherId=world.ids["T1"],
        recurringSchedule={"dayOfWeek": 3, "hour": 10, "minute": 0},
    )
    admin = await world.as_role("admin")
    # Week 2's slot is taken (Wednesday 2026-11-11 10:00 Berlin = 09:00 UTC).
    await book(admin, world, datetime(2026, 11, 11, 9, 0, tzinfo=UTC), student="S2")
    query = """mutation($e: ID!) { bookRecurringSessions(entitlementId: $e, weeks: 3) {
      booked { startTime } skipped { start code localStart(tz: "Europe/Berlin") { dateTime } } } }"""
    result = (await api.gql(query, {"e": entitlement}))["data"]["bookRecurringSessions"]
    assert result["booked"] == [{"startTime": "2026-11-04T09:00:00+00:00"}]
    assert [(s["start"], s["code"], s["localStart"]["dateTime"]) for s in result["skipped"]] == [
        ("2026-11-11T09:00:00+00:00", "CONFLICT", "2026-11-11T10:00:00+01:00"),
        ("2026-11-18T09:00:00+00:00", "INSUFFICIENT_CREDITS", "2026-11-18T10:00:00+01:00"),
    ]
