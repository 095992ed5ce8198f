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
    try:
        async with asyncio.timeout(config.seconds):
            reply = await _converse(entities, config, [system, *history], new, calls)
    except TimeoutError:
        reply = f"(stopped after {config.seconds:g} s without a final answer)"
    now = entities.service.clock()
    await store.update_one(
        org,
        {"_id": conversation_id, "userId": user},
        {"$push": {"messages": {"$each": new}}, "$set": {"updatedAt": now},
         "$setOnInsert": {"createdAt": now}},
        upsert=True,
    )  # fmt: skip
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
            for call in requested:
                name = tool_name(call["function"]["name"])
                result = await TOOLS.call(entities, name, _arguments(call))
                code = None if result["ok"] else result["error"]["code"]
                calls.append({"name": name, "ok": result["ok"], "code": code})
                content = json.dumps(result)
                new.append({"role": "tool", "tool_call_id": call.get("id"), "content": content})
    return f"(stopped after {config.max_steps} steps without a final answer)"


def _arguments(call: dict[str, Any]) -> dict[str, Any]:
    raw = call["function"].get("arguments") or "{}"
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
        return response.json()["choices"][0]["message"]
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
        raise AppError(
            f"The model provider did not answer usably ({type(exc).__name__}); try again later.",
            code=ErrorCode.INTERNAL,
        ) from None
