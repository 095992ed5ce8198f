"""The operations in ``examples/`` run, over HTTP, as the personas' journeys.

Each ``.graphql`` file is what a client ships: the guardian app's screens, the teacher's
week, the admin console. The journey below sends each file as a client would (the whole
file with ``operationName``) with that persona's token, in an order that makes every step
legal: a guardian books, the provider refuses the payment, the guardian pays again, the
admin records the success, the teacher runs the session and shares the report, which the
guardian then reads. Every operation of every file must be a step, so an example that drifts
from the schema, or from what its persona may do, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, parse

from tests.booking_world import at, prepare

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKENS = {"guardian": ("u-g1", "guardian"), "teacher": ("u-t1", "teacher"), "admin": ("u-admin", "admin")}  # fmt: skip
TZ = "Europe/Berlin"


def operations() -> dict[str, tuple[str, Path]]:
    """Operation name -> (persona, file) for every operation under ``examples/``."""
    found: dict[str, tuple[str, Path]] = {}
    for file in sorted(EXAMPLES.rglob("*.graphql")):
        for definition in parse(file.read_text()).definitions:
            if isinstance(definition, OperationDefinitionNode):
                assert definition.name is not None, f"{file}: every operation is named"
                name = definition.name.value
                assert name not in found, f"{name} is defined twice"
                found[name] = (file.parent.name, file)
    return found


State = dict[str, Any]


@dataclass
class Step:
    operation: str
    variables: Callable[[State], dict[str, Any]] = lambda s: {}
    keep: Callable[[State, dict[str, Any]], None] = lambda s, data: None
    clock: Callable[[State], Any] | None = None  # where the clock is before the call
    persona: str | None = None  # when not the file's persona (a shared screen)


def _slots(state: State, data: dict[str, Any]) -> None:
    state["slots"] = [slot["start"] for slot in data["availableSlots"]]
    assert len(state["slots"]) >= 3, data


def _booked(key: str) -> Callable[[State, dict[str, Any]], None]:
    def keep(state: State, data: dict[str, Any]) -> None:
        session = data["bookSession"]
        assert session["status"] == "PENDING_PAYMENT", session
        state[key] = session["id"]
        state[f"{key}:payment"] = session["payment"]["id"]

    return keep


def _retried(state: State, data: dict[str, Any]) -> None:
    payment = data["retrySessionPayment"]["payment"]
    assert payment["id"] != state["session:payment"] and payment["status"] == "PENDING"
    state["session:payment"] = payment["id"]


def _paid(state: State, data: dict[str, Any]) -> None:
    paid = data["recordPaymentSucceeded"]
    assert paid["status"] == "PAID" and paid["session"]["status"] == "SCHEDULED", paid


def _in_week(state: State, data: dict[str, Any]) -> None:
    ids = [edge["node"]["id"] for edge in data["sessions"]["edges"]]
    assert state["session"] in ids, data
    node = next(e["node"] for e in data["sessions"]["edges"] if e["node"]["id"] == state["session"])
    state["start"] = node["localStartTime"]


def _jobs(state: State, data: dict[str, Any]) -> None:
    pending = [
        e["node"] for e in data["scheduledJobs"]["edges"] if e["node"]["status"] == "PENDING"
    ]
    assert pending, data
    state["job"] = pending[0]["id"]


def _report_shared(state: State, data: dict[str, Any]) -> None:
    session = data["session"]
    assert session["reportShared"] is True and session["reportContent"] == "Fractions: solid.", data


def _start_of(state: State):
    return datetime.fromisoformat(state["slots"][-1])


JOURNEY = [
    Step("GuardianHome", lambda s: {"tz": TZ}),
    Step("BookingOptions", lambda s: {
        "teacherId": s["ids"]["T1"], "studentId": s["ids"]["S1"], "from": at(0).isoformat(),
        "to": at(6).isoformat(), "durationMinutes": 60, "tz": TZ}, _slots),
    Step("BookSession", lambda s: {"input": {
        "teacherId": s["ids"]["T1"], "studentId": s["ids"]["S1"], "startTime": s["slots"][0],
        "durationMinutes": 60, "subject": "math"}}, _booked("session")),
    Step("RecordPaymentFailed", lambda s: {"id": s["session:payment"], "reason": "card declined"}),
    Step("RetrySessionPayment", lambda s: {"id": s["session"]}, _retried),
    Step("RecordPaymentSucceeded", lambda s: {"id": s["session:payment"], "providerReference": "pi_2"},
         _paid),
    Step("MyPayments"),
    Step("RescheduleSession", lambda s: {"id": s["session"], "startTime": s["slots"][-1]}),
    Step("BookSession", lambda s: {"input": {
        "teacherId": s["ids"]["T1"], "studentId": s["ids"]["S1"], "startTime": s["slots"][1],
        "durationMinutes": 60}}, _booked("other")),
    Step("CancelSession", lambda s: {"id": s["other"], "reason": "holiday"}),
    Step("TeacherWeek", lambda s: {"from": at(-24).isoformat(), "to": at(24 * 6).isoformat(),
                                   "tz": TZ}, _in_week),
    Step("RefundsDue"),
    Step("AuditTrail", lambda s: {"entityType": "session", "entityId": s["session"]}),
    Step("Jobs", lambda s: {"subject": s["session"]}, _jobs),
    Step("CancelJob", lambda s: {"id": s["job"]}),
    Step("RetryJob", lambda s: {"id": s["job"]}),
    Step("OrganizationSettings"),
    Step("StartSession", lambda s: {"id": s["session"]},
         clock=lambda s: _start_of(s) - timedelta(minutes=5)),
    Step("CompleteSession", lambda s: {"id": s["session"], "report": "Fractions: solid."},
         clock=lambda s: _start_of(s) + timedelta(minutes=60)),
    Step("ShareSessionReport", lambda s: {"id": s["session"]}),
    Step("GuardianSession", lambda s: {"id": s["session"], "tz": TZ}, _report_shared),
    Step("MarkNoShow", lambda s: {"id": s["ids"]["X1"]},
         clock=lambda s: _start_of(s) + timedelta(days=30)),
    Step("MyMessages", lambda s: {"tz": TZ}),
    Step("TeacherMessages"),
]  # fmt: skip


def test_every_example_operation_is_a_step_of_the_journey():
    assert {step.operation for step in JOURNEY} == set(operations())


async def test_the_examples_run_as_their_personas(api):
    world = api.world
    await prepare(world)
    state: State = {"ids": world.ids}
    known = operations()
    for step in JOURNEY:
        persona, file = known[step.operation]
        if step.clock is not None:
            world.service.clock.now = step.clock(state)
        token = api.token(*TOKENS[step.persona or persona])
        response = await api.client.post(
            f"{api.base_url}/graphql",
            json={
                "query": file.read_text(),
                "operationName": step.operation,
                "variables": step.variables(state),
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, (step.operation, body)
        assert all(value is not None for value in body["data"].values()), (step.operation, body)
        step.keep(state, body["data"])
