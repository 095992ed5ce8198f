"""Operations x roles: each root field a role may call, and the error code for the rest.

Each cell is one request over real HTTP as that role's canonical user (admin; teacher T1;
guardian G1; ``none``: a signed-in user whose only role the organization does not define).
"ok" means the operation answered without errors; any other value is the error code
expected. Features keep their rows in their own marked block, each with its own test.
"""

from __future__ import annotations

import pytest

ROLE_TOKENS = {
    "admin": ("u-admin", "admin"),
    "teacher": ("u-t1", "teacher"),
    "guardian": ("u-g1", "guardian"),
    "none": ("u-visitor", "visitor"),
}


async def outcome(api, document: str, role: str) -> str:
    body = await api.gql(document, token=api.token(*ROLE_TOKENS[role]))
    codes = sorted({e["extensions"]["code"] for e in body.get("errors", [])})
    if not codes:
        assert body["data"] is not None and None not in body["data"].values(), body
        return "ok"
    return ",".join(codes)


# -- guardian and teacher features ----------------------------------------------------------
# messages: the caller's own outbox messages (admins: the organization's); bookingPolicy: the
# booking rules every role reads; organizationSettings: every other setting, admin-only.
GUARDIAN_AND_TEACHER_OPERATIONS = {
    "messages": "{ messages(first: 5) { totalCount edges { node { id kind } } } }",
    "bookingPolicy": "{ bookingPolicy { timezone minBookingLeadMinutes currency } }",
    "organizationSettings": "{ organizationSettings { timezone bufferMinutes } }",
}
GUARDIAN_AND_TEACHER_TABLE = {
    "messages": {"admin": "ok", "teacher": "ok", "guardian": "ok", "none": "FORBIDDEN"},
    "bookingPolicy": {"admin": "ok", "teacher": "ok", "guardian": "ok", "none": "FORBIDDEN"},
    "organizationSettings": {
        "admin": "ok",
        "teacher": "FORBIDDEN",
        "guardian": "FORBIDDEN",
        "none": "FORBIDDEN",
    },
}


@pytest.mark.parametrize("role", sorted(ROLE_TOKENS))
@pytest.mark.parametrize("operation", sorted(GUARDIAN_AND_TEACHER_TABLE))
async def test_guardian_and_teacher_feature_cell(api, operation, role):
    document = GUARDIAN_AND_TEACHER_OPERATIONS[operation]
    expected = GUARDIAN_AND_TEACHER_TABLE[operation][role]
    assert await outcome(api, document, role) == expected, (operation, role)


# -- end of guardian and teacher features ---------------------------------------------------
