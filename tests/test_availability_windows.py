"""A teacher availability window must end after it starts: refused as BAD_USER_INPUT naming
the window, on create and update, through GraphQL and through the agent's tools alike."""

from __future__ import annotations

import pytest

CREATE = """mutation($input: CreateTeacherInput!) { createTeacher(input: $input) {
  id availability { startHour startMinute endHour endMinute } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateTeacherInput!) { updateTeacher(id: $id, input: $input) {
  id availability { startHour endHour } } }"""
TOOL = "mutation($n: String!, $a: JSON!) { callAgentTool(name: $n, arguments: $a) }"

GOOD = {"dayOfWeek": 1, "startHour": 9, "endHour": 12}
BAD_WINDOWS = [
    pytest.param({"dayOfWeek": 2, "startHour": 17, "endHour": 9}, id="end-before-start"),
    pytest.param({"dayOfWeek": 2, "startHour": 9, "endHour": 9}, id="empty"),
    pytest.param(
        {"dayOfWeek": 2, "startHour": 9, "startMinute": 30, "endHour": 9, "endMinute": 15},
        id="minutes-inverted",
    ),
]


def _refusal(body: dict) -> dict:
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return error["extensions"]["fields"]


@pytest.mark.parametrize("window", BAD_WINDOWS)
async def test_create_teacher_refuses_an_inverted_window(api, window):
    teacher = {"name": "New", "email": "new@example.com", "availability": [GOOD, window]}
    fields = _refusal(await api.gql(CREATE, {"input": teacher}))
    assert list(fields) == ["availability.1"]
    assert "end after it starts" in fields["availability.1"]
    listed = await api.gql('{ teachers(filter: {search: "new@example.com"}) { totalCount } }')
    assert listed["data"]["teachers"]["totalCount"] == 0


@pytest.mark.parametrize("role", ["admin", "teacher"])
@pytest.mark.parametrize("window", BAD_WINDOWS)
async def test_update_teacher_refuses_an_inverted_window(api, role, window):
    t1 = api.world.ids["T1"]
    variables = {"id": t1, "input": {"availability": [window]}}
    assert list(_refusal(await api.gql(UPDATE, variables, role=role))) == ["availability.0"]
    kept = await api.gql(
        "query($id: ID!) { teacher(id: $id) { availability { startHour endHour } } }", {"id": t1}
    )
    assert kept["data"]["teacher"]["availability"] == [{"startHour": 9, "endHour": 17}]


async def test_windows_that_end_after_they_start_are_accepted(api):
    windows = [
        GOOD,
        {"dayOfWeek": 3, "startHour": 9, "startMinute": 30, "endHour": 9, "endMinute": 45},
        {"dayOfWeek": 4, "startHour": 18, "endHour": 24},
        {"dayOfWeek": 5, "startHour": 0, "endHour": 0, "endMinute": 15},
    ]
    teacher = {"name": "New", "email": "new@example.com", "availability": windows}
    body = await api.gql(CREATE, {"input": teacher})
    assert "errors" not in body, body
    assert len(body["data"]["createTeacher"]["availability"]) == 4


@pytest.mark.parametrize("window", BAD_WINDOWS)
async def test_agent_tools_refuse_an_inverted_window_the_same_way(api, window):
    create = {"type": "teacher", "data": {"name": "New", "email": "n@example.com",
                                          "availability": [window]}}  # fmt: skip
    created = (await api.gql(TOOL, {"n": "entity.create", "a": create}))["data"]["callAgentTool"]
    assert created["ok"] is False and created["error"]["code"] == "BAD_USER_INPUT"
    assert list(created["error"]["fields"]) == ["availability.0"]

    update = {"type": "teacher", "id": api.world.ids["T1"], "data": {"availability": [window]}}
    for role in ("admin", "teacher"):
        body = await api.gql(TOOL, {"n": "entity.update", "a": update}, role=role)
        updated = body["data"]["callAgentTool"]
        assert updated["ok"] is False and updated["error"]["code"] == "BAD_USER_INPUT"
        assert list(updated["error"]["fields"]) == ["availability.0"]
