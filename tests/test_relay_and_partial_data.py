"""Conventions the frontend teams rely on: Relay's node root, one field name per idea, and
partial results when one root field of an operation is refused."""

from __future__ import annotations

import pytest

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Session { status teacherNotes guardianNotes }
  ... on Guardian { name phone } } }"""


@pytest.mark.parametrize(
    ("role", "key", "typename"),
    [
        ("admin", "X1", "Session"),
        ("admin", "G2", "Guardian"),
        ("admin", "P1", "Payment"),
        ("teacher", "X1", "Session"),
        ("teacher", "T1", "Teacher"),
        ("guardian", "X1", "Session"),
        ("guardian", "G1", "Guardian"),
        ("guardian", "E1", "Entitlement"),
    ],
)
async def test_node_finds_an_in_scope_entity_of_any_type(api, role, key, typename):
    body = await api.gql(NODE, {"id": api.world.ids[key]}, role=role)
    assert "errors" not in body
    assert body["data"]["node"]["__typename"] == typename
    assert body["data"]["node"]["id"] == api.world.ids[key]


async def test_node_is_masked_like_a_typed_read(api):
    x1 = api.world.ids["X1"]
    as_teacher = (await api.gql(NODE, {"id": x1}, role="teacher"))["data"]["node"]
    assert as_teacher["teacherNotes"] is not None and as_teacher["guardianNotes"] is None
    as_guardian = (await api.gql(NODE, {"id": x1}, role="guardian"))["data"]["node"]
    assert as_guardian["teacherNotes"] is None and as_guardian["guardianNotes"] is not None


@pytest.mark.parametrize(
    ("role", "key"),
    [
        ("teacher", "X2"),  # another teacher's session: out of scope
        ("teacher", "G1"),  # a type the teacher role may not read
        ("teacher", "P1"),
        ("guardian", "X2"),  # another family's
        ("guardian", "G2"),
    ],
)
async def test_node_out_of_scope_is_null_like_absent(api, role, key):
    hidden = await api.gql(NODE, {"id": api.world.ids[key]}, role=role)
    absent = await api.gql(NODE, {"id": "no-such-id"}, role=role)
    assert hidden == absent == {"data": {"node": None}, "extensions": hidden["extensions"]}


async def test_node_never_crosses_organizations(api, other_world):
    body = await api.gql(NODE, {"id": other_world.ids["X1"]}, role="admin")
    assert body["data"]["node"] is None


async def test_duration_minutes_is_the_one_name_and_duration_is_deprecated(api):
    body = await api.gql(
        "query($id: ID!) { session(id: $id) { durationMinutes duration } }",
        {"id": api.world.ids["X1"]},
        role="guardian",
    )
    session = body["data"]["session"]
    assert session["durationMinutes"] == session["duration"] == 60
    types = await api.gql(
        '{ __type(name: "Session") { fields(includeDeprecated: true) '
        "{ name isDeprecated deprecationReason } } }"
    )
    fields = {f["name"]: f for f in types["data"]["__type"]["fields"]}
    assert not fields["durationMinutes"]["isDeprecated"]
    assert fields["duration"]["deprecationReason"] == "Use durationMinutes."


async def test_a_refused_root_field_leaves_the_others_answered(api):
    """A teacher's dashboard that also asks for payments (which the role may not list) still
    gets its sessions; the refusal is an error at the payments path, not a null response."""
    body = await api.gql(
        "{ me { userId } sessions { totalCount } payments { totalCount } "
        "organizationSettings { timezone } }",
        role="teacher",
    )
    data = body["data"]
    assert data["me"]["userId"] == "u-t1"
    assert data["sessions"]["totalCount"] == 1
    assert data["payments"] is None and data["organizationSettings"] is None
    refused = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert refused == {("payments",): "FORBIDDEN", ("organizationSettings",): "FORBIDDEN"}
