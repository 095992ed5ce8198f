"""``bookingPolicy`` over HTTP: the booking rules every role reads, and nothing else of the
settings (which stay admin-only)."""

from __future__ import annotations

import pytest

POLICY = """{ bookingPolicy { timezone minBookingLeadMinutes rescheduleCutoffMinutes
  guardianCancelCutoffMinutes maxReschedules sessionPricePerHour currency
  defaultDurationMinutes slotIntervalMinutes } }"""
UPDATE = """mutation($input: OrganizationSettingsInput!) {
  updateOrganizationSettings(input: $input) { timezone } }"""


@pytest.mark.parametrize("role", ["admin", "teacher", "guardian"])
async def test_every_role_reads_the_defaults(api, role):
    body = await api.gql(POLICY, role=role)
    assert body["data"]["bookingPolicy"] == {
        "timezone": "UTC",
        "minBookingLeadMinutes": 1440,
        "rescheduleCutoffMinutes": 120,
        "guardianCancelCutoffMinutes": 120,  # unset: the reschedule cutoff applies
        "maxReschedules": 2,
        "sessionPricePerHour": 50.0,
        "currency": "USD",
        "defaultDurationMinutes": 60,
        "slotIntervalMinutes": 15,
    }


async def test_an_admins_change_shows_at_once(api):
    changes = {
        "timezone": "Europe/Berlin",
        "minBookingLeadMinutes": 720,
        "rescheduleCutoffMinutes": 240,
        "guardianCancelCutoffMinutes": 60,
        "maxReschedules": 1,
        "sessionPricePerHour": 42.5,
        "currency": "EUR",
        "defaultDurationMinutes": 45,
        "slotIntervalMinutes": 30,
    }
    assert "errors" not in await api.gql(UPDATE, {"input": changes})
    assert (await api.gql(POLICY, role="guardian"))["data"]["bookingPolicy"] == changes


async def test_it_holds_the_booking_rules_and_no_other_setting(api):
    query = '{ __type(name: "BookingPolicy") { fields { name } } }'
    fields = {
        f["name"] for f in (await api.gql(query, role="guardian"))["data"]["__type"]["fields"]
    }
    assert fields == {
        "timezone",
        "minBookingLeadMinutes",
        "rescheduleCutoffMinutes",
        "guardianCancelCutoffMinutes",
        "maxReschedules",
        "sessionPricePerHour",
        "currency",
        "defaultDurationMinutes",
        "slotIntervalMinutes",
    }
    refused = await api.gql("{ organizationSettings { bufferMinutes } }", role="guardian")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
