"""Read masks whose entries depend on the document (``visibleWhen``), a platform feature:
custom roles an organization could define, checked over HTTP.

A conditional entry shows fields on the documents that match its conditions (the scope
rules' field matches, actor values included) and hides them on the others; such fields are
never filtered, sorted on or written through generic writes, and a condition the engine
cannot evaluate (a field the type lacks, an actor value that is unset) never holds.
"""

from __future__ import annotations

from app.platform.permissions import (
    FieldMatch,
    Policy,
    ReadMask,
    RoleDefinition,
    ScopeAll,
    VisibleWhen,
    WriteMask,
)

NOTES = "{ sessions { edges { node { id subject teacherNotes meetingLink } } } }"
AGENT = 'mutation($a: JSON!) { callAgentTool(name: "%s", arguments: $a) }'


async def _mentor(api, *when: VisibleWhen, write: tuple[str, ...] = ()) -> None:
    """Reads every session's subject, and more where ``when`` holds."""
    world = api.world
    role = RoleDefinition(
        name="mentor",
        policies=tuple(
            Policy(resource="session", action=a, effect="allow") for a in ("list", "read", "update")
        ),
        scopes={"session": (ScopeAll(),)},
        readMasks={"session": ReadMask(mode="whitelist", fields=("subject",), visibleWhen=when)},
        writeMasks={"session": WriteMask(update=write)},
    )
    await world.service.roles.replace(world.org, role)


OWN_NOTES = VisibleWhen(
    fields=("teacherNotes",),
    conditions=(FieldMatch(field="teacherId", operator="eq", valuePath="actor.teacherId"),),
)


async def _nodes(api, token: str) -> dict[str, dict]:
    body = await api.gql(NOTES, token=token)
    assert "errors" not in body, body
    return {e["node"]["id"]: e["node"] for e in body["data"]["sessions"]["edges"]}


async def test_fields_show_on_the_documents_matching_the_condition(api):
    ids = api.world.ids
    await _mentor(api, OWN_NOTES)
    nodes = await _nodes(api, api.token("u-t1", "mentor"))  # u-t1 is linked to T1
    assert nodes[ids["X1"]]["teacherNotes"] == "teacher-only note"  # T1's session
    assert nodes[ids["X2"]]["teacherNotes"] is None  # T2's
    assert {n["subject"] for n in nodes.values()} == {"math"}
    one = await api.gql(
        "query($id: ID!) { session(id: $id) { teacherNotes } }",
        {"id": ids["X2"]},
        token=api.token("u-t1", "mentor"),
    )
    assert one["data"]["session"] == {"teacherNotes": None}
    got = await api.gql(
        AGENT % "entity.query", {"a": {"type": "session"}}, token=api.token("u-t1", "mentor")
    )
    items = {i["id"]: i for i in got["data"]["callAgentTool"]["result"]["items"]}
    assert "teacherNotes" in items[ids["X1"]] and "teacherNotes" not in items[ids["X2"]]


async def test_an_unset_actor_value_or_unknown_field_never_matches(api):
    await _mentor(
        api,
        OWN_NOTES,
        VisibleWhen(
            fields=("meetingLink",),
            conditions=(FieldMatch(field="noSuchField", operator="exists", value=False),),
        ),
    )
    for node in (await _nodes(api, api.token("u-nobody", "mentor"))).values():
        assert node["teacherNotes"] is None and node["meetingLink"] is None


async def test_a_conditional_field_is_no_filter_and_no_generic_write(api):
    ids = api.world.ids
    await _mentor(api, OWN_NOTES, write=("teacherNotes",))
    token = api.token("u-t1", "mentor")
    probe = await api.gql(
        AGENT % "entity.query",
        {"a": {"type": "session", "filters": {"teacherNotes": {"contains": "note"}}}},
        token=token,
    )
    assert probe["data"]["callAgentTool"]["error"]["code"] == "FORBIDDEN"
    write = await api.gql(
        'mutation($id: ID!) { updateSession(id: $id, input: {teacherNotes: "x"}) { id } }',
        {"id": ids["X1"]},
        token=token,
    )
    assert write["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_each_document_gets_the_entries_of_the_roles_reaching_it(api):
    """u-t1 as teacher and mentor: X1 is reached by both roles (the teacher's mask shows the
    notes anyway), X2 by the mentor role only, whose condition does not hold there."""
    ids = api.world.ids
    await _mentor(api, OWN_NOTES)
    nodes = await _nodes(api, api.token("u-t1", "teacher", "mentor"))
    assert nodes[ids["X1"]]["teacherNotes"] == "teacher-only note"
    assert nodes[ids["X1"]]["meetingLink"] is not None  # the teacher role's mask
    assert nodes[ids["X2"]] == {
        "id": ids["X2"],
        "subject": "math",
        "teacherNotes": None,
        "meetingLink": None,
    }
