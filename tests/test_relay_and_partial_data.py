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


PAGE = """query($first: Int, $after: String, $last: Int, $before: String, $order: [TeacherOrder!]) {
  teachers(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


async def _pages(api, order, **start):
    """Every id, walking pages of 3 forward (first/after) or backward (last/before)."""
    backward = "last" in start
    ids, cursor, infos = [], None, []
    while True:
        variables = {**start, "order": order, ("before" if backward else "after"): cursor}
        body = await api.gql(PAGE, variables)
        connection = body["data"]["teachers"]
        page = [e["node"]["id"] for e in connection["edges"]]
        info = connection["pageInfo"]
        infos.append(info)
        ids = page + ids if backward else ids + page
        more = info["hasPreviousPage"] if backward else info["hasNextPage"]
        if not more:
            return ids, infos
        cursor = info["startCursor"] if backward else info["endCursor"]


@pytest.mark.parametrize(
    "order",
    [None, [{"field": "NAME", "direction": "DESC"}], [{"field": "NAME", "direction": "ASC"}]],
)
async def test_paging_backward_walks_the_same_order_as_forward(api, order):
    system = await api.world.system()
    for i in range(8):  # repeated names: ties are broken by id in both directions
        await system.create("teacher", {"name": f"N{i % 3}", "email": f"n{i}@example.com"})
    forward, forward_infos = await _pages(api, order, first=3)
    backward, backward_infos = await _pages(api, order, last=3)
    assert len(forward) == 10 and backward == forward
    assert not forward_infos[0]["hasPreviousPage"] and forward_infos[1]["hasPreviousPage"]
    assert not backward_infos[0]["hasNextPage"] and backward_infos[1]["hasNextPage"]
    # A window between two cursors: what lies strictly between them.
    first_page = (await api.gql(PAGE, {"first": 2, "order": order}))["data"]["teachers"]
    last_page = (await api.gql(PAGE, {"last": 2, "order": order}))["data"]["teachers"]
    window = await api.gql(
        PAGE,
        {
            "first": 100,
            "after": first_page["pageInfo"]["endCursor"],
            "before": last_page["pageInfo"]["startCursor"],
            "order": order,
        },
    )
    assert [e["node"]["id"] for e in window["data"]["teachers"]["edges"]] == forward[2:-2]


async def test_paging_backward_over_a_nullable_order(api):
    """Sessions without a subject sort first ascending; backward pages keep them in place."""
    system = await api.world.system()
    x1 = await system.get("session", api.world.ids["X1"])
    for i in range(4):
        server = {k: v for k, v in x1.data.items() if k != "subject"}
        await system.create("session", {"subject": f"s{i}"} if i % 2 else {}, server_fields=server)
    query = """query($last: Int, $before: String, $first: Int, $after: String) {
      sessions(orderBy: [{field: SUBJECT}], first: $first, after: $after, last: $last,
               before: $before) {
        edges { node { id subject } } pageInfo { startCursor endCursor } } }"""
    everything = (await api.gql(query, {"first": 100}))["data"]["sessions"]["edges"]
    walked, before = [], None
    while True:
        page = (await api.gql(query, {"last": 2, "before": before}))["data"]["sessions"]
        walked = page["edges"] + walked
        if len(page["edges"]) < 2:
            break
        before = page["pageInfo"]["startCursor"]
    assert walked == everything and everything[0]["node"]["subject"] is None


async def test_negative_last_is_bad_user_input(api):
    body = await api.gql(PAGE, {"last": -1})
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"last": "negative"},
    }
