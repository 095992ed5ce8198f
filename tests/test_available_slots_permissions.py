"""availableSlots with a studentId leaves out the student's busy times, which are their
sessions with every teacher: only callers who may book for that student (its guardian, an
admin) may ask, decided as booking is. Over HTTP and through the agent's tool."""

from __future__ import annotations

from datetime import timedelta

from tests.booking_world import at, book, pack, prepare

SLOTS = """query($t: ID!, $f: DateTime!, $to: DateTime!, $s: ID) {
  availableSlots(teacherId: $t, from: $f, to: $to, durationMinutes: 60, studentId: $s) { start } }"""
TOOL = 'mutation($a: JSON!) { callAgentTool(name: "scheduling.available_slots", arguments: $a) }'


async def test_only_those_who_book_for_a_student_see_their_busy_times(api):
    world = api.world
    await prepare(world)
    ids = world.ids
    admin = await world.as_role("admin")
    lesson = at(1)  # S1's lesson with T2, Wednesday 11:00 Berlin
    await book(admin, world, lesson, teacher="T2", entitlement=await pack(world))
    day = at(-9)
    variables = {
        "t": ids["T1"],
        "f": day.isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
        "s": ids["S1"],
    }

    async def starts(variables, **who) -> set[str]:
        body = await api.gql(SLOTS, variables, **who)
        assert "errors" not in body, body
        return {s["start"] for s in body["data"]["availableSlots"]}

    teacher_free = {**variables, "s": None}
    assert lesson.isoformat() in await starts(teacher_free, role="teacher")  # T1 is free then
    for who in ("guardian", "admin"):
        assert lesson.isoformat() not in await starts(variables, role=who)  # S1 is not
    refused = await api.gql(SLOTS, variables, role="teacher")  # T1 teaches S1 but books not
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    assert "studentId" in refused["errors"][0]["message"]

    tool = await api.gql(
        TOOL,
        {"a": {"teacherId": ids["T1"], "from": variables["f"], "to": variables["to"],
               "durationMinutes": 60, "studentId": ids["S1"]}},
        role="teacher",
    )  # fmt: skip
    assert tool["data"]["callAgentTool"]["error"]["code"] == "FORBIDDEN"
