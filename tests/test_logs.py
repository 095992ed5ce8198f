"""Logs an operator can use: structured, attributable to a request, an organization and a
user, and following a request into the jobs it schedules."""

from __future__ import annotations

import io
import json
import logging

from app.platform import logs
from tests.booking_world import WED_10_BERLIN, pack, prepare

BOOK = """mutation($t: ID!, $s: ID!, $at: DateTime!, $e: ID) {
    bookSession(input: {teacherId: $t, studentId: $s, startTime: $at, durationMinutes: 60,
                        entitlementId: $e}) { id } }"""


async def test_an_incoming_request_id_is_honoured_and_follows_into_jobs(api):
    world = api.world
    await prepare(world)
    entitlement = await pack(world)
    variables = {
        "t": world.ids["T1"],
        "s": world.ids["S1"],
        "at": WED_10_BERLIN.isoformat(),
        "e": entitlement,
    }
    response = await api.client.post(
        f"{api.base_url}/graphql",
        json={"query": BOOK, "variables": variables},
        headers={
            "Authorization": f"Bearer {api.token_for('guardian')}",
            "X-Request-ID": "client-req.42",
        },
    )
    assert response.headers["X-Request-ID"] == "client-req.42"
    session = response.json()["data"]["bookSession"]["id"]
    admin = await world.as_role("admin")
    jobs = await world.service.jobs.for_refs(admin, [session])
    assert jobs and {j["requestId"] for j in jobs} == {"client-req.42"}


async def test_a_request_id_that_is_not_an_id_is_replaced(api):
    for bad in ("x" * 65, "has spaces", "semi;colon"):
        response = await api.client.get(f"{api.base_url}/healthz", headers={"X-Request-ID": bad})
        rid = response.headers["X-Request-ID"]
        assert rid != bad and logs.valid_request_id(rid)


async def test_log_lines_carry_request_organization_and_user(api, no_personal_data_in_logs):
    await api.gql("{ me { userId } }", role="teacher")
    record_ids = []

    class Grab(logging.Handler):
        def emit(self, record):
            record_ids.append(record)

    handler = Grab()
    handler.addFilter(logs.ContextFilter())
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        response = await api.post("{ me { userId } }", token=api.token_for("teacher"))
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    (line,) = [r for r in record_ids if "POST /graphql" in r.getMessage()]
    assert line.request_id == response.headers["X-Request-ID"]
    assert (line.organization_id, line.user_id) == (api.world.org, "u-t1")


def test_json_format_is_one_object_per_line_with_the_ids():
    stream = io.StringIO()
    logs.configure("INFO", "json")
    root = logging.getLogger()
    handler = root.handlers[0]
    handler.setStream(stream)
    try:
        with logs.bound(request="r-1", organization="org-a", user="u-1"):
            logging.getLogger("app.test").info("booked %s", "s-1")
        logging.getLogger("app.test").debug("not at INFO")
    finally:
        root.handlers.remove(handler)
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "booked s-1" and entry["level"] == "INFO"
    assert (entry["requestId"], entry["organizationId"], entry["userId"]) == ("r-1", "org-a", "u-1")
    assert entry["time"].endswith("+00:00")


def test_text_format_has_time_level_and_ids():
    stream = io.StringIO()
    logs.configure("WARNING", "text")
    root = logging.getLogger()
    handler = root.handlers[0]
    handler.setStream(stream)
    try:
        with logs.bound(request="r-2", organization="org-b", user="u-2"):
            logging.getLogger("app.test").warning("slow store")
            logging.getLogger("app.test").info("hidden below WARNING")
    finally:
        root.handlers.remove(handler)
        root.setLevel(logging.WARNING)
    (line,) = stream.getvalue().splitlines()
    assert line.split()[1] == "WARNING"
    assert "[req=r-2 org=org-b user=u-2] slow store" in line
