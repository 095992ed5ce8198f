"""The agent acts with exactly the permissions of its user: prompt, tools, loop and MCP."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
import uvicorn

from app.platform.templates import render
from app.tutoring.agent.loop import AgentConfig, ask
from app.tutoring.agent.prompt import EntityQueries, render_prompt
from app.tutoring.agent.tools import TOOLS
from tests import model_server
from tests.booking_world import at, code_of, pack

REQUEST = "list upcoming sessions with the guardians' phone numbers"


# -- prompt templates ------------------------------------------------------------------------


async def _as_template_sees(entities, template: str) -> str:
    """Renders ``template`` with the prompt's data source as this user (rendering custom
    templates through the API is for admins; what the data source returns is the point)."""
    return await render(template, {"entity": EntityQueries(entities)}, filters={})


async def test_teacher_prompt_holds_only_their_sessions_and_nothing_private(world):
    prompt = await render_prompt(await world.as_role("teacher"))
    assert "org-a" in prompt and "2026-11-04T12:00:00+00:00" in prompt  # X1, T1's session
    assert prompt.count("\n- 2026") == 1  # X1 only, not X2 (T2 teaches it)
    for secret in (world.ids["P1"], world.ids["E1"], world.ids["G1"], "+1 555 11", "guardian note"):
        assert secret not in prompt
    dump = await _as_template_sees(await world.as_role("teacher"), "{{ entity.query('session') }}")
    assert world.ids["X1"] in dump and world.ids["X2"] not in dump
    for hidden in ("paymentId", "entitlementId", "guardianId", world.ids["P1"], world.ids["E1"]):
        assert hidden not in dump
    assert (
        await _as_template_sees(await world.as_role("teacher"), "{{ entity.query('guardian') }}")
        == "[]"
    )


async def test_guardian_prompt_has_no_teacher_notes(world):
    template = "{% for s in entity.query('session') %}{{ s }}{% endfor %}"
    as_guardian = await _as_template_sees(await world.as_role("guardian"), template)
    assert "teacher-only note" not in as_guardian and "teacherNotes" not in as_guardian
    assert "guardian note" in as_guardian
    as_admin = await render_prompt(await world.as_role("admin"), template)
    assert "teacher-only note" in as_admin
    assert "teacher-only note" not in await render_prompt(await world.as_role("guardian"))


async def test_only_admins_render_custom_templates(world):
    assert await code_of(render_prompt(await world.as_role("teacher"), "{{ 1 }}")) == "FORBIDDEN"


async def test_entity_data_never_becomes_template_code(world):
    admin = await world.as_role("admin")
    await admin.update("guardian", world.ids["G1"], {"name": "{{ 7*7 }}{% raw %}"})
    out = await render_prompt(
        admin, "{% for g in entity.query('guardian') %}[{{ g.name }}]{% endfor %}"
    )
    assert "[{{ 7*7 }}{% raw %}]" in out and "49" not in out


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ entity.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.system('id') }}",
        "{{ entity.query.__func__.__globals__['__builtins__'] }}",
        "{% import 'os' as os %}{{ os }}",
        "{% include '/etc/passwd' %}",
        "{{ range(10**9) | list }}",
        "{% for i in range(100000) %}xxxxxxxxxx{% endfor %}",
        "{{ '{0.__class__.__mro__}'.format(org) }}",
        "{% for i in range(10000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
        "{% set x = 'a' * 10**9 %}",
        "{{ 'a' * 100000 }}",
        "{{ 2 ** 100000 }}",
        "{{ '{:>800000000}'.format('a') }}",
        "{{ '%800000000s' % 'a' }}",
        "{{ lipsum(1000000) }}",
        "{{ 'x' | center(100000000) }}",
        "{{ 1 // 0 }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{{ 'x' * 30000 }}",
    ],
)
async def test_sandbox_escapes_fail_safely(world, template):
    assert await code_of(render_prompt(await world.as_role("admin"), template)) == "BAD_USER_INPUT"


# -- tools -----------------------------------------------------------------------------------


async def test_guardian_booking_for_another_guardians_student_is_not_found(w):
    result = await TOOLS.call(await w.as_role("guardian"), "session.book", {
        "teacherId": w.ids["T1"], "studentId": w.ids["S2"],
        "startTime": at(2).isoformat(), "durationMinutes": 60})  # fmt: skip
    assert result == {"ok": False, "error": result["error"]}
    assert result["error"]["code"] == "NOT_FOUND"
    own = await TOOLS.call(await w.as_role("guardian"), "session.book", {
        "teacherId": w.ids["T1"], "studentId": w.ids["S1"], "startTime": at(2).isoformat(),
        "durationMinutes": 60, "entitlementId": await pack(w)})  # fmt: skip
    assert own["ok"] and own["result"]["status"] == "SCHEDULED"


async def test_teacher_cannot_update_their_hourly_rate(world, service):
    teacher = await world.as_role("teacher")
    result = await TOOLS.call(teacher, "entity.update",
                              {"type": "teacher", "id": world.ids["T1"], "data": {"hourlyRate": 99}})  # fmt: skip
    assert result["error"]["code"] == "FORBIDDEN" and list(result["error"]["fields"]) == [
        "hourlyRate"
    ]
    trail = await service.store.collection("audit").find(world.org, {"action": "agent.tool"})
    assert trail[-1]["tool"] == "entity.update" and trail[-1]["code"] == "FORBIDDEN"
    assert trail[-1]["actor"]["userId"] == "u-t1"


async def test_bad_arguments_are_a_readable_refusal(world):
    result = await TOOLS.call(await world.as_role("admin"), "entity.query", {"type": "spaceship"})
    assert result["error"]["code"] == "BAD_USER_INPUT" and "type" in result["error"]["fields"]
    for not_an_object in ([1, 2], "str", 5):
        refused = await TOOLS.call(await world.as_role("admin"), "entity.query", not_an_object)
        assert refused["error"]["code"] == "BAD_USER_INPUT"
    packs = await TOOLS.call(await world.as_role("admin"), "entity.update",
                             {"type": "entitlement", "id": world.ids["E1"], "data": {"subject": "x"}})  # fmt: skip
    assert packs["error"]["code"] == "FORBIDDEN"  # packs change only through domain steps
    unknown = await TOOLS.call(await world.as_role("admin"), "rm.rf", {})
    assert unknown["error"]["code"] == "BAD_USER_INPUT"


# -- the same request through the loop, a GraphQL tool call and MCP --------------------------


@pytest.fixture
async def model():
    server = uvicorn.Server(
        uvicorn.Config(model_server.app, host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    model_server.REQUESTS.clear()
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1"
    server.should_exit = True
    await task


async def test_loop_as_admin_and_teacher(world, model):
    config = AgentConfig(base_url=model, model="scripted")
    admin = await ask(await world.as_role("admin"), config, REQUEST)
    assert "phone +1 555 11" in admin.reply and "phone +1 555 12" in admin.reply
    assert [c["name"] for c in admin.tool_calls] == ["entity.query", "entity.get", "entity.get"]
    teacher = await ask(await world.as_role("teacher"), config, REQUEST)
    assert teacher.reply.count("\n") == 0 and world.ids["X1"] in teacher.reply
    assert "phone hidden" in teacher.reply and "+1 555" not in teacher.reply
    system_prompt = model_server.REQUESTS[-1]["messages"][0]["content"]
    assert world.ids["P1"] not in system_prompt  # the teacher's prompt too
    follow_up = await ask(await world.as_role("teacher"), config, REQUEST, teacher.conversation_id)
    assert follow_up.conversation_id == teacher.conversation_id
    assert (
        await code_of(
            ask(await world.as_role("guardian"), config, REQUEST, teacher.conversation_id)
        )
        == "NOT_FOUND"
    )


async def test_loop_is_bounded_and_keeps_a_valid_history(world, model, service):
    teacher = await world.as_role("teacher")
    flood = await ask(teacher, AgentConfig(base_url=model, model="flood", max_steps=2), REQUEST)
    assert flood.reply.startswith("(stopped after 2 steps")
    assert len(flood.tool_calls) == 16  # 8 per step; the rest refused unrun
    stored = await service.store.collection("conversations").find_one(
        world.org, {"_id": flood.conversation_id}
    )
    asked = [
        c["id"] for m in stored["messages"] if m["role"] == "assistant" for c in m["tool_calls"]
    ]
    answered = [m["tool_call_id"] for m in stored["messages"] if m["role"] == "tool"]
    assert sorted(asked) == sorted(answered) and len(asked) == 60
    assert (
        await code_of(ask(teacher, AgentConfig(base_url=model, model="garbled"), REQUEST))
        == "INTERNAL"
    )


async def test_loop_over_graphql(api, model):
    ask_agent = "mutation($m: String!) { askAgent(message: $m) { conversationId reply toolCalls { name status code ok } } }"
    unconfigured = await api.gql(ask_agent, {"m": REQUEST})
    assert unconfigured["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    api.runtime.settings.agent_base_url, api.runtime.settings.agent_model = model, "scripted"
    admin = (await api.gql(ask_agent, {"m": REQUEST}))["data"]["askAgent"]
    assert "phone +1 555 11" in admin["reply"]
    teacher = (await api.gql(ask_agent, {"m": REQUEST}, role="teacher"))["data"]["askAgent"]
    assert "+1 555" not in teacher["reply"] and "phone hidden" in teacher["reply"]
    assert teacher["toolCalls"] == [
        {"name": "entity.query", "status": "OK", "code": None, "ok": True}
    ]


async def test_graphql_tool_calls_as_admin_and_teacher(api):
    query = 'mutation($a: JSON!) { callAgentTool(name: "entity.query", arguments: $a) }'
    args = {"a": {"type": "session", "filters": {"status": "SCHEDULED"}}}
    admin = (await api.gql(query, args))["data"]["callAgentTool"]
    assert {s["status"] for s in admin["result"]["items"]} == {"SCHEDULED"}
    teacher = (await api.gql(query, args, role="teacher"))["data"]["callAgentTool"]
    assert len(admin["result"]["items"]) == 2 and len(teacher["result"]["items"]) == 1
    assert (
        "guardianId" in admin["result"]["items"][0]
        and "guardianId" not in teacher["result"]["items"][0]
    )
    get = 'mutation($a: JSON!) { callAgentTool(name: "entity.get", arguments: $a) }'
    guardian = {"a": {"type": "guardian", "id": api.world.ids["G1"]}}
    assert (await api.gql(get, guardian))["data"]["callAgentTool"]["result"]["phone"] == "+1 555 11"
    refused = (await api.gql(get, guardian, role="teacher"))["data"]["callAgentTool"]
    assert refused["ok"] is False and refused["error"]["code"] == "FORBIDDEN"
    tools = (await api.gql("{ agentTools { name parameters } }", role="teacher"))["data"][
        "agentTools"
    ]
    assert {t["name"] for t in tools} >= {
        "entity.query",
        "session.book",
        "scheduling.available_slots",
    }
    prompt = (await api.gql("{ renderAgentPrompt }", role="teacher"))["data"]["renderAgentPrompt"]
    assert "tutoring operations assistant" in prompt


async def test_mcp_server_acts_as_the_tokens_user(tmp_path):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from app.platform.auth import mint_dev_token

    secret = "mcp-test-secret-that-is-long-enough-000111"
    env = {**os.environ, "AUTH_DEV_SECRET": secret}
    env.pop("MONGODB_URL", None)

    async def run_as(user: str, role: str, calls):
        token = mint_dev_token(secret, org="demo", user=user, roles=[role])
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "app.cli", "mcp", "--token", token, "--demo"],
            env=env,
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            out = [sorted(t.name for t in tools.tools)]
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                out.append(json.loads(result.content[0].text))
            return out

    query = ("entity.query", {"type": "session", "filters": {"status": "SCHEDULED"}})
    admin = await run_as("demo-admin", "admin", [query, ("entity.query", {"type": "guardian"})])
    assert {"session.book", "session.start", "payment.record_succeeded"} <= set(admin[0])
    assert len(admin[1]["result"]["items"]) == 3
    assert {s["status"] for s in admin[1]["result"]["items"]} == {"SCHEDULED"}
    assert {g["phone"] for g in admin[2]["result"]["items"]} == {"+1 555 0201", "+1 555 0202"}
    outcome = ("payment.record_succeeded", {"paymentId": "any"})
    teacher = await run_as(
        "demo-teacher-tom", "teacher", [query, ("entity.query", {"type": "guardian"}), outcome]
    )
    assert len(teacher[1]["result"]["items"]) == 2  # Tom's two sessions only
    assert all("guardianId" not in s for s in teacher[1]["result"]["items"])
    assert teacher[2]["ok"] is False and teacher[2]["error"]["code"] == "FORBIDDEN"
    assert teacher[3]["ok"] is False and teacher[3]["error"]["code"] == "FORBIDDEN"
