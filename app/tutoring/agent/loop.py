"""The agent loop: a provider-neutral conversation with an OpenAI-compatible chat-completions
endpoint, whose tool calls run as the user through the same tools as everywhere else.
Bounded in steps and in time; conversations are kept per user."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from bson import ObjectId

from app.platform.entities import ActorEntities
from app.platform.errors import AppError, BadUserInput, ErrorCode, NotFound
from app.platform.store import IndexSpec
from app.platform.tools import Toolbox
from app.tutoring.agent.prompt import render_prompt
from app.tutoring.agent.tools import TOOLS

CONVERSATIONS = "conversations"
MAX_HISTORY = 200  # messages kept per conversation
MAX_CALLS_PER_STEP = 8
MAX_ARGUMENT_CHARS = 20_000
CONVERSATION_INDEXES = (
    IndexSpec(CONVERSATIONS, (("organizationId", 1), ("userId", 1), ("updatedAt", 1))),
)


@dataclass(frozen=True)
class AgentConfig:
    base_url: str | None
    model: str | None
    api_key: str | None = None
    max_steps: int = 8
    seconds: float = 60.0


@dataclass
class AgentReply:
    conversation_id: str
    reply: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def function_name(tool: str) -> str:
    """Chat-completions function names allow letters, digits, _ and -: not dots."""
    return tool.replace(".", "__")


def tool_name(function: str) -> str:
    return function.replace("__", ".")


def tool_specs(toolbox: Toolbox) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": function_name(t["name"]),
                "description": t["description"],
                "parameters": t["parameters"],
            },
        }
        for t in toolbox.describe()
    ]


async def ask(
    entities: ActorEntities,
    config: AgentConfig,
    message: str,
    conversation_id: str | None = None,
) -> AgentReply:
    if not config.base_url or not config.model:
        raise BadUserInput(
            "The agent is not configured: set AGENT_BASE_URL and AGENT_MODEL.",
            {"agent": "not configured"},
        )
    if not message.strip() or len(message) > 8000:
        raise BadUserInput("The message must have 1 to 8000 characters.", {"message": "length"})
    store = entities.service.store.collection(CONVERSATIONS)
    org, user = entities.actor.organization_id, entities.actor.user_id
    history: list[dict[str, Any]] = []
    if conversation_id:
        found = await store.find_one(org, {"_id": conversation_id, "userId": user})
        if found is None:  # another user's conversation is as absent as a missing one
            raise NotFound("conversation", conversation_id)
        history = found["messages"]
    conversation_id = conversation_id or str(ObjectId())
    new: list[dict[str, Any]] = [{"role": "user", "content": message}]
    system = {"role": "system", "content": await render_prompt(entities)}
    calls: list[dict[str, Any]] = []
    reply = ""
    try:
        async with asyncio.timeout(config.seconds):
            reply = await _converse(entities, config, [system, *history], new, calls)
    except TimeoutError:
        reply = f"(stopped after {config.seconds:g} s without a final answer)"
    finally:
        # Whatever happened, the turn is kept (tools may have acted), and every tool call the
        # model asked for has an answer, or providers refuse the history next time.
        _answer_open_calls(new)
        now = entities.service.clock()
        await store.update_one(
            org,
            {"_id": conversation_id, "userId": user},
            {
                "$push": {"messages": {"$each": new, "$slice": -MAX_HISTORY}},
                "$set": {"updatedAt": now},
                "$setOnInsert": {"createdAt": now},
            },
            upsert=True,
        )
    return AgentReply(conversation_id, reply, calls)


async def _converse(
    entities: ActorEntities,
    config: AgentConfig,
    context: list[dict[str, Any]],
    new: list[dict[str, Any]],
    calls: list[dict[str, Any]],
) -> str:
    """Asks the model until it answers without tool calls; ``new`` and ``calls`` collect
    the turn's messages and the tools it used."""
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    async with httpx.AsyncClient(timeout=config.seconds) as client:
        for _ in range(config.max_steps):
            answer = await _complete(client, config, headers, [*context, *new])
            new.append(answer)
            requested = answer.get("tool_calls") or []
            if not requested:
                return answer.get("content") or ""
            for i, call in enumerate(requested):
                name = tool_name(call["function"]["name"])
                if i >= MAX_CALLS_PER_STEP:
                    result = _refusal(f"At most {MAX_CALLS_PER_STEP} tool calls per step.")
                else:
                    # A tool is not cut off half-way by the time limit: it finishes its writes.
                    result = await asyncio.shield(TOOLS.call(entities, name, _arguments(call)))
                    code = None if result["ok"] else result["error"]["code"]
                    calls.append({"name": name, "ok": result["ok"], "code": code})
                new.append(_tool_message(call, result))
    return f"(stopped after {config.max_steps} steps without a final answer)"


def _refusal(message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": str(ErrorCode.BAD_USER_INPUT), "message": message}}


def _tool_message(call: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.get("id"), "content": json.dumps(result)}


def _answer_open_calls(new: list[dict[str, Any]]) -> None:
    answered = {m.get("tool_call_id") for m in new if m.get("role") == "tool"}
    for message in [m for m in new if m.get("role") == "assistant"]:
        for call in message.get("tool_calls") or []:
            if call.get("id") not in answered:
                new.append(_tool_message(call, _refusal("Not run: the turn ran out of time.")))


def _check_shape(message: Any) -> None:
    """A reply we can act on: a message object whose tool calls name a function."""
    if not isinstance(message, dict):
        raise ValueError("message is not an object")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list) or not all(
        isinstance(c, dict)
        and isinstance(c.get("function"), dict)
        and isinstance(c["function"].get("name"), str)
        for c in calls
    ):
        raise ValueError("malformed tool calls")


def _arguments(call: dict[str, Any]) -> Any:
    raw = call["function"].get("arguments") or "{}"
    if isinstance(raw, str) and len(raw) > MAX_ARGUMENT_CHARS:
        return "too large"  # refused by the toolbox as "not an object"
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {"__invalid_json__": raw}
    return parsed if isinstance(parsed, dict) else {"__invalid_json__": raw}


async def _complete(
    client: httpx.AsyncClient,
    config: AgentConfig,
    headers: dict[str, str],
    messages: list[dict[str, Any]],
) -> dict[str, Any]:
    try:
        response = await client.post(
            f"{config.base_url.rstrip('/')}/chat/completions",
            json={"model": config.model, "messages": messages, "tools": tool_specs(TOOLS)},
            headers=headers,
        )
        response.raise_for_status()
        message = response.json()["choices"][0]["message"]
        _check_shape(message)
        return message
    except (httpx.HTTPError, KeyError, IndexError, ValueError, TypeError) as exc:
        raise AppError(
            f"The model provider did not answer usably ({type(exc).__name__}); try again later.",
            code=ErrorCode.INTERNAL,
        ) from None
