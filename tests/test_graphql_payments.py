"""Payment outcomes, retries and refunds due over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.tutoring.scheduling.transitions import lapse_hold
from tests.booking_world import at, prepare

BOOK = """mutation($input: BookSessionInput!) { bookSession(input: $input) {
  id status paymentId holdExpiresAt } }"""
SUCCEEDED = """mutation($id: ID!) { recordPaymentSucceeded(id: $id, providerReference: "psp") {
  id status refundDue refundReason session { status paymentId } } }"""
FAILED = """mutation($id: ID!) { recordPaymentFailed(id: $id, reason: "card declined") {
  id status failureReason } }"""
RETRY = """mutation($id: ID!) { retrySessionPayment(id: $id) {
  id status holdExpiresAt paymentId payment { id status amount currency refundDue } } }"""
REFUNDS = """query($due: Boolean) { payments(filter: {refundDue: $due}, first: 100) {
  totalCount edges { node { id status refundDue refundReason } } } }"""


def _codes(body):
    return [e["extensions"]["code"] for e in body.get("errors", [])]


@pytest.fixture
async def booked(api):
    """The API, and a session G1 booked for S1 with T1, awaiting payment."""
    await prepare(api.world)
    ids = api.world.ids
    variables = {
        "input": {
            "teacherId": ids["T1"],
            "studentId": ids["S1"],
            "startTime": at(2).isoformat(),
            "durationMinutes": 60,
        }
    }
    session = (await api.gql(BOOK, variables, role="guardian"))["data"]["bookSession"]
    return api, session


async def test_a_failed_payment_is_retried_and_paid(booked, clock):
    api, session = booked
    first = session["paymentId"]
    clock.advance(minutes=5)
    failed = (await api.gql(FAILED, {"id": first}))["data"]["recordPaymentFailed"]
    assert failed["status"] == "FAILED"

    retried = (await api.gql(RETRY, {"id": session["id"]}, role="guardian"))["data"]
    retried = retried["retrySessionPayment"]
    assert retried["status"] == "PENDING_PAYMENT"
    assert retried["holdExpiresAt"] == session["holdExpiresAt"]
    assert retried["paymentId"] != first
    assert retried["payment"] == {
        "id": retried["paymentId"],
        "status": "PENDING",
        "amount": 50.0,
        "currency": "USD",
        "refundDue": False,
    }

    again = await api.gql(SUCCEEDED, {"id": first})
    assert _codes(again) == ["INVALID_TRANSITION"]
    assert "retrySessionPayment" in again["errors"][0]["message"]

    paid = (await api.gql(SUCCEEDED, {"id": retried["paymentId"]}))["data"]
    assert paid["recordPaymentSucceeded"] == {
        "id": retried["paymentId"],
        "status": "PAID",
        "refundDue": False,
        "refundReason": None,
        "session": {"status": "SCHEDULED", "paymentId": retried["paymentId"]},
    }


async def test_two_payments_paid_at_once_count_once_and_admins_find_the_refund(booked):
    api, session = booked
    first = session["paymentId"]
    retried = await api.gql(RETRY, {"id": session["id"]}, role="guardian")
    second = retried["data"]["retrySessionPayment"]["paymentId"]
    bodies = await asyncio.gather(
        api.gql(SUCCEEDED, {"id": first}), api.gql(SUCCEEDED, {"id": second})
    )
    results = [b["data"]["recordPaymentSucceeded"] for b in bodies]
    assert sorted(r["refundDue"] for r in results) == [False, True]
    counted = next(r for r in results if not r["refundDue"])
    assert {r["session"]["paymentId"] for r in results} <= {counted["id"]}

    due = (await api.gql(REFUNDS, {"due": True}))["data"]["payments"]
    flagged = next(r for r in results if r["refundDue"])
    assert due["totalCount"] == 1
    assert due["edges"][0]["node"] == {
        "id": flagged["id"],
        "status": "PAID",
        "refundDue": True,
        "refundReason": f"The session was already paid by payment {counted['id']}.",
    }
    own = (await api.gql(REFUNDS, {"due": True}, role="guardian"))["data"]["payments"]
    assert [e["node"]["id"] for e in own["edges"]] == [flagged["id"]]
    not_due = (await api.gql(REFUNDS, {"due": False}))["data"]["payments"]
    assert flagged["id"] not in {e["node"]["id"] for e in not_due["edges"]}
    assert counted["id"] in {e["node"]["id"] for e in not_due["edges"]}
    assert api.world.ids["P1"] in {e["node"]["id"] for e in not_due["edges"]}
    assert _codes(await api.gql(REFUNDS, {"due": True}, role="teacher")) == ["FORBIDDEN"]


async def test_a_success_after_the_hold_lapsed_is_refund_due(booked, clock):
    api, session = booked
    clock.advance(minutes=61)
    await lapse_hold(await api.world.system(), session["id"])  # the hold-expiry job
    late = (await api.gql(SUCCEEDED, {"id": session["paymentId"]}))["data"]
    late = late["recordPaymentSucceeded"]
    assert late["status"] == "PAID" and late["refundDue"] is True
    assert late["session"]["status"] == "CANCELLED"
    refused = await api.gql(RETRY, {"id": session["id"]}, role="guardian")
    assert _codes(refused) == ["INVALID_TRANSITION"]


async def test_retry_refusals_carry_their_codes(booked, clock):
    api, session = booked
    sid = session["id"]
    assert _codes(await api.gql(RETRY, {"id": sid}, role="teacher")) == ["FORBIDDEN"]
    other = api.token("u-g2", "guardian")
    assert _codes(await api.gql(RETRY, {"id": sid}, token=other)) == ["NOT_FOUND"]
    assert _codes(await api.gql(RETRY, {"id": "nope"}, role="guardian")) == ["NOT_FOUND"]
    clock.advance(minutes=60)
    late = await api.gql(RETRY, {"id": sid}, role="guardian")
    assert _codes(late) == ["SCHEDULING_RULE"]


async def test_payment_mutations_take_id_and_still_accept_the_deprecated_payment_id(booked):
    api, session = booked
    both = await api.gql(
        'mutation($id: ID!) { recordPaymentFailed(id: $id, paymentId: $id, reason: "x") { id } }',
        {"id": session["paymentId"]},
    )
    assert _codes(both) == ["BAD_USER_INPUT"]
    assert set(both["errors"][0]["extensions"]["fields"]) == {"id"}
    neither = await api.gql('mutation { recordPaymentSucceeded(providerReference: "x") { id } }')
    assert _codes(neither) == ["BAD_USER_INPUT"]
    old = await api.gql(
        "mutation($p: ID!) { recordPaymentSucceeded(paymentId: $p) { status } }",
        {"p": session["paymentId"]},
    )
    assert old["data"]["recordPaymentSucceeded"] == {"status": "PAID"}
    args = await api.gql(
        """{ __type(name: "Mutation") { fields { name
             args(includeDeprecated: true) { name isDeprecated deprecationReason } } } }"""
    )
    fields = {f["name"]: f["args"] for f in args["data"]["__type"]["fields"]}
    for name in ("recordPaymentSucceeded", "recordPaymentFailed"):
        deprecated = {a["name"]: a["deprecationReason"] for a in fields[name] if a["isDeprecated"]}
        assert deprecated == {"paymentId": "Use id."}


async def test_guardians_and_teachers_cannot_record_outcomes(booked):
    api, session = booked
    for role in ("guardian", "teacher"):
        body = await api.gql(SUCCEEDED, {"id": session["paymentId"]}, role=role)
        assert _codes(body) == ["FORBIDDEN"]
        body = await api.gql(FAILED, {"id": session["paymentId"]}, role=role)
        assert _codes(body) == ["FORBIDDEN"]


async def test_hold_expiry_is_unchanged_by_a_retry(booked, clock):
    api, session = booked
    clock.advance(minutes=30)
    retried = (await api.gql(RETRY, {"id": session["id"]}))["data"]["retrySessionPayment"]
    assert retried["holdExpiresAt"] == session["holdExpiresAt"]
    hold = retried["holdExpiresAt"]
    assert hold == (clock.now + timedelta(minutes=30)).isoformat()
