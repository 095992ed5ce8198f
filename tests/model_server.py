"""A scripted model that speaks the OpenAI chat-completions protocol, for agent-loop tests.

For "list upcoming sessions with the guardians' phone numbers" it does what a model would:
query the scheduled sessions, fetch the guardian of each session it was shown a guardian for,
then answer with one line per session and the phone it saw (or "phone hidden").
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REQUESTS: list[dict[str, Any]] = []


def _call(i: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"call_{i}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}  # fmt: skip


def _reply(message: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"id": "x", "object": "chat.completion",
                         "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})  # fmt: skip


async def completions(request: Request) -> JSONResponse:
    body = await request.json()
    REQUESTS.append(body)
    messages = body["messages"]
    if body["model"] == "flood":  # asks for far more tool calls than a step may run
        return _reply({"role": "assistant", "content": None, "tool_calls": [
            _call(i, "entity__query", {"type": "teacher"}) for i in range(30)]})  # fmt: skip
    if body["model"] == "garbled":
        return JSONResponse({"choices": [{"message": "not an object"}]})
    tool_results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
    if not tool_results:
        return _reply({"role": "assistant", "content": None, "tool_calls": [
            _call(0, "entity__query", {"type": "session", "filters": {"status": "scheduled"}})]})  # fmt: skip
    sessions = tool_results[0].get("result", {}).get("items", []) if tool_results[0]["ok"] else []
    if len(tool_results) == 1:
        wanted = [s["guardianId"] for s in sessions if s.get("guardianId")]
        if wanted:
            return _reply({"role": "assistant", "content": None, "tool_calls": [
                _call(i + 1, "entity__get", {"type": "guardian", "id": g}) for i, g in enumerate(wanted)]})  # fmt: skip
    phones = {r["result"]["id"]: r["result"].get("phone") for r in tool_results[1:] if r["ok"]}
    lines = [
        f"{s['id']} at {s.get('startTime')}: "
        + (f"phone {phones[s['guardianId']]}" if s.get("guardianId") in phones else "phone hidden")
        for s in sessions
    ]
    return _reply({"role": "assistant", "content": "\n".join(lines) or "no sessions"})


app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
