"""Every cell of the platform-core permission table, checked again through GraphQL.

The policy is the hand-written one in ``tests/test_permission_table.py`` (ACTIONS, VISIBLE,
IN_SCOPE, OUT_OF_SCOPE); nothing here restates it. For each role x type:

- list:     ``<types>(first: 100)`` returns the in-scope entity and not the out-of-scope one,
            or FORBIDDEN without L;
- get:      ``<type>(id)`` selecting every field returns exactly the VISIBLE fields, null for
            an out-of-scope id, or FORBIDDEN without R;
- relation: every relation field from a parent the role can read returns the target with
            exactly its VISIBLE fields when the role may read the target type, sees the
            parent's link field and reaches the target; null otherwise, never an error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema, get_named_type

from tests.test_permission_table import (
    ACTIONS,
    CONDITIONAL_CELLS,
    CONDITIONS,
    FIELDS,
    IN_SCOPE,
    OUT_OF_SCOPE,
    ROLES,
    TYPES,
    VISIBLE,
    _expand,
    visible_when,
)

ALWAYS = {"id", "createdAt", "updatedAt", "__typename"}
SUBSELECTION = {
    "availability": "{ dayOfWeek startHour startMinute endHour endMinute }",
    "billingAddress": "{ street city postalCode country }",
    "recurringSchedule": "{ dayOfWeek hour minute }",
}

# GraphQL fields that read a data field under another name: visible exactly when it is.
ALIASES = {"session": {"durationMinutes": "duration"}}

# (parent type, GraphQL field, link field on the parent, target type). A link of None is a
# reverse relation (a connection of targets pointing at the parent), reached through the
# parent's id, which is always visible.
RELATIONS = [
    ("session", "teacher", "teacherId", "teacher"),
    ("session", "student", "studentId", "student"),
    ("session", "guardian", "guardianId", "guardian"),
    ("session", "payment", "paymentId", "payment"),
    ("session", "entitlement", "entitlementId", "entitlement"),
    ("student", "guardian", "guardianId", "guardian"),
    ("student", "preferredTeacher", "preferredTeacherId", "teacher"),
    ("student", "sessions", None, "session"),
    ("guardian", "students", None, "student"),
    ("payment", "guardian", "guardianId", "guardian"),
    ("payment", "session", "sessionId", "session"),
    ("payment", "entitlement", "entitlementId", "entitlement"),
    ("entitlement", "student", "studentId", "student"),
    ("entitlement", "guardian", "guardianId", "guardian"),
    ("entitlement", "payment", "paymentId", "payment"),
]
# Every relation path whose parent the role can read.
RELATION_CELLS = [
    pytest.param(role, *rel, id=f"{role}-{rel[0]}.{rel[1]}")
    for role in ROLES
    for rel in RELATIONS
    if "R" in ACTIONS[role][rel[0]]
]


def _selection(slug: str) -> str:
    """``{ id createdAt updatedAt <every field of the type> }``."""
    fields = " ".join(f"{f} {SUBSELECTION.get(f, '')}".strip() for f in FIELDS[slug])
    aliases = " ".join(ALIASES.get(slug, ()))
    return f"{{ id createdAt updatedAt {fields} {aliases} }}"


def _shown(node: dict) -> set[str]:
    """The data fields shown; an alias counts as its data field, so an alias shown while its
    field is hidden (or the reverse) fails the comparison with the table."""
    aliases = {a: f for names in ALIASES.values() for a, f in names.items()}
    shown = {k for k, v in node.items() if v is not None} - ALWAYS
    return {aliases.get(k, k) for k in shown}


def _codes(body: dict) -> set[str]:
    return {e["extensions"]["code"] for e in body.get("errors", [])}


def _data(body: dict) -> dict:
    assert "errors" not in body, body
    return body["data"]


def _get(slug: str, selection: str) -> str:
    return f"query($id: ID!) {{ {slug}(id: $id) {selection} }}"


def _local_siblings(gql_type) -> dict[str, str]:
    """``localStartTime`` -> ``startTime``: the argument-taking local forms of its times."""
    return {
        name: name[len("local")].lower() + name[len("local") + 1 :]
        for name, field in gql_type.fields.items()
        if name.startswith("local") and "tz" in field.args
    }


def test_tables_cover_the_schema():
    """FIELDS and RELATIONS name every field of every entity type in the SDL (besides the
    local siblings of its times, which follow their time's visibility: see below)."""
    schema = build_schema((Path(__file__).parent.parent / "schema.graphql").read_text())
    for slug in TYPES:
        gql_type = schema.type_map[slug[0].upper() + slug[1:]]
        relations = {field for parent, field, _, _ in RELATIONS if parent == slug}
        local = _local_siblings(gql_type)
        assert set(local.values()) == {
            name for name, f in gql_type.fields.items() if get_named_type(f.type).name == "DateTime"
        }
        fields = set(gql_type.fields) - set(local)
        aliases = set(ALIASES.get(slug, ()))
        assert fields == ALWAYS - {"__typename"} | set(FIELDS[slug]) | relations | aliases
        for parent, field, _, target in RELATIONS:
            if parent == slug:
                named = get_named_type(gql_type.fields[field].type).name
                assert named.lower().removesuffix("connection") == target
    for role in ROLES:  # every role reaches every target type through some readable parent
        assert {p.values[4] for p in RELATION_CELLS if p.values[0] == role} == set(TYPES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("slug", TYPES)
async def test_list(api, role, slug):
    body = await api.gql(
        f"{{ {slug}s(first: 100) {{ totalCount edges {{ node {{ id }} }} }} }}", role=role
    )
    if "L" not in ACTIONS[role][slug]:
        assert "FORBIDDEN" in _codes(body), body
        return
    connection = _data(body)[f"{slug}s"]
    listed = {edge["node"]["id"] for edge in connection["edges"]}
    assert api.world.ids[IN_SCOPE[role][slug]] in listed
    hidden = OUT_OF_SCOPE.get(role, {}).get(slug)
    if hidden:
        assert api.world.ids[hidden] not in listed
    assert connection["totalCount"] == len(connection["edges"])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("slug", TYPES)
async def test_get_by_id(api, role, slug):
    ids = api.world.ids
    query = _get(slug, _selection(slug))
    if "R" not in ACTIONS[role][slug]:
        body = await api.gql(query, {"id": ids[IN_SCOPE["admin"][slug]]}, role=role)
        assert "FORBIDDEN" in _codes(body), body
        return
    target = ids[IN_SCOPE[role][slug]]
    node = _data(await api.gql(query, {"id": target}, role=role))[slug]
    assert node["id"] == target and node["createdAt"] and node["updatedAt"]
    # The world sets every field of the in-scope entities, so null means hidden.
    assert _shown(node) == _expand(VISIBLE[role][slug], slug), f"{role} reading {slug}"
    hidden = OUT_OF_SCOPE.get(role, {}).get(slug)
    if hidden:
        assert _data(await api.gql(query, {"id": ids[hidden]}, role=role))[slug] is None


@pytest.mark.parametrize(("role", "parent", "field", "link", "target"), RELATION_CELLS)
async def test_relation(api, role, parent, field, link, target):
    ids = api.world.ids
    parent_id = ids[IN_SCOPE[role][parent]]
    if link is None:  # reverse relation: the targets pointing at the parent
        target_id = ids.get(IN_SCOPE[role].get(target) or IN_SCOPE["admin"][target])
        link_visible = True
        sub = f"{{ totalCount edges {{ node {_selection(target)} }} }}"
    else:
        stored = await (await api.world.system()).get(parent, parent_id)
        target_id = stored.data[link]
        link_visible = link in _expand(VISIBLE[role][parent], parent)
        sub = _selection(target)
    in_scope = target_id == ids.get(IN_SCOPE[role].get(target))
    expected = "R" in ACTIONS[role][target] and link_visible and in_scope

    query = _get(parent, f"{{ id {field} {sub} }}")
    related = _data(await api.gql(query, {"id": parent_id}, role=role))[parent][field]
    if not expected:
        assert related is None, f"{role}: {parent}.{field} should be null"
        return
    if link is None:
        nodes = {edge["node"]["id"]: edge["node"] for edge in related["edges"]}
        assert related["totalCount"] == len(nodes)
        related = nodes[target_id]
    assert related["id"] == target_id
    assert _shown(related) == _expand(VISIBLE[role][target], target), f"{role}: {parent}.{field}"


# A guardian's in-scope parent re-pointed at an entity outside the guardian's scope: the link
# stays visible and the type readable, so only scope makes the relation null.
REPOINTED = [
    ("payment", "P1", "session", "sessionId", "X2"),
    ("entitlement", "E1", "student", "studentId", "S2"),
]


@pytest.mark.parametrize("role", ["admin", "guardian"])
@pytest.mark.parametrize(("parent", "key", "field", "link", "other"), REPOINTED)
async def test_relation_to_out_of_scope_target_is_null(api, role, parent, key, field, link, other):
    ids = api.world.ids
    assert link in _expand(VISIBLE["guardian"][parent], parent)
    assert other in OUT_OF_SCOPE["guardian"].values()
    await (await api.world.system()).update(parent, ids[key], {link: ids[other]})

    query = _get(parent, f"{{ {link} {field} {{ id }} }}")
    node = _data(await api.gql(query, {"id": ids[key]}, role=role))[parent]
    assert node[link] == ids[other]
    assert node[field] == (None if role in OUT_OF_SCOPE else {"id": ids[other]})


# Visibility that depends on the document (VISIBLE_WHEN), by id and through every relation
# that leads to the type, on an in-scope entity made to match the condition.
@pytest.mark.parametrize(("role", "slug", "condition"), CONDITIONAL_CELLS)
async def test_get_by_id_when_the_document_matches(api, role, slug, condition):
    values = CONDITIONS[condition]
    if not set(values) <= set(FIELDS[slug]):
        return
    ids = api.world.ids
    target = ids[IN_SCOPE[role][slug]]
    await (await api.world.system()).update(slug, target, {}, server_fields=values)
    expected = visible_when(role, slug, condition)
    node = _data(await api.gql(_get(slug, _selection(slug)), {"id": target}, role=role))[slug]
    assert _shown(node) == expected, f"{role} reading {slug} ({condition})"
    for parent, field, link, child in RELATIONS:
        if child != slug or "R" not in ACTIONS[role][parent] or not IN_SCOPE[role].get(parent):
            continue
        parent_id = ids[IN_SCOPE[role][parent]]
        if link is not None:
            stored = await (await api.world.system()).get(parent, parent_id)
            if stored.data.get(link) != target:
                continue
            sub = _selection(slug)
        else:
            sub = f"{{ edges {{ node {_selection(slug)} }} }}"
        query = _get(parent, f"{{ {field} {sub} }}")
        related = _data(await api.gql(query, {"id": parent_id}, role=role))[parent][field]
        nodes = [e["node"] for e in related["edges"]] if link is None else [related]
        shown = [_shown(n) for n in nodes if n and n["id"] == target]
        if link is not None and link not in _expand(VISIBLE[role][parent], parent):
            assert shown == []
            continue
        assert shown == [expected], f"{role}: {parent}.{field} ({condition})"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("slug", TYPES)
async def test_local_times_follow_their_times_visibility(api, role, slug):
    """Every ``local...(tz:)`` sibling is null exactly where its DateTime field is hidden."""
    if "R" not in ACTIONS[role][slug]:
        return
    schema = build_schema((Path(__file__).parent.parent / "schema.graphql").read_text())
    local = _local_siblings(schema.type_map[slug[0].upper() + slug[1:]])
    selection = " ".join(f'{name}(tz: "Europe/Berlin") {{ offsetMinutes }}' for name in local)
    node = _data(await api.gql(_get(slug, f"{{ {selection} }}"),
                               {"id": api.world.ids[IN_SCOPE[role][slug]]}, role=role))[slug]  # fmt: skip
    visible = _expand(VISIBLE[role][slug], slug) | {"createdAt", "updatedAt"}
    assert {name for name, value in node.items() if value is not None} == {
        name for name, time in local.items() if time in visible
    }
