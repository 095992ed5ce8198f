"""The agent over GraphQL: its tools, its prompt, one tool call, and the loop, as the caller."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.graphql.types.codes import ErrorCode
from app.tutoring.agent.loop import AgentConfig, ask
from app.tutoring.agent.prompt import render_prompt
from app.tutoring.agent.tools import TOOLS


@strawberry.type
class AgentTool:
    name: str
    description: str
    parameters: JSON = strawberry.field(description="JSON Schema of the arguments")


@strawberry.enum(description="How a tool call ended.")
class AgentToolCallStatus(Enum):
    OK = "ok"
    ERROR = "error"


@strawberry.type
class AgentToolCall:
    name: str
    status: AgentToolCallStatus
    code: ErrorCode | None = strawberry.field(  # type: ignore[valid-type]
        description="Why the call ended in ERROR (the tool's refusal, or INTERNAL)"
    )
    ok: bool = strawberry.field(deprecation_reason="Use status.")

    @classmethod
    def of(cls, call: dict[str, Any]) -> AgentToolCall:
        """From the loop's record of a call: ``{name, ok, code}``."""
        return cls(
            name=call["name"],
            status=AgentToolCallStatus.OK if call["ok"] else AgentToolCallStatus.ERROR,
            code=None if call["ok"] else ErrorCode(call["code"]),
            ok=call["ok"],
        )


@strawberry.type
class AgentReply:
    conversationId: strawberry.ID
    reply: str
    toolCalls: list[AgentToolCall]


@strawberry.type
class AgentQuery:
    @strawberry.field
    def agentTools(self) -> list[AgentTool]:
        return [AgentTool(**t) for t in TOOLS.describe()]

    @strawberry.field(description="The spec's tutoring prompt when template is null.")
    async def renderAgentPrompt(self, info: Info, template: str | None = None) -> str | None:
        return await render_prompt(info.context.entities, template)


@strawberry.type
class AgentMutation:
    @strawberry.mutation(
        description="Runs a tool as you. A refusal is a result {ok: false, error: {code}}; "
        "statuses in results are the enums' values (SCHEDULED)."
    )
    async def callAgentTool(self, info: Info, name: str, arguments: JSON) -> JSON:
        return await TOOLS.call(info.context.entities, name, arguments)

    @strawberry.mutation(description="The agent loop, acting with your permissions.")
    async def askAgent(
        self, info: Info, message: str, conversationId: strawberry.ID | None = None
    ) -> AgentReply:
        settings = info.context.runtime.settings
        config = AgentConfig(settings.agent_base_url, settings.agent_model, settings.agent_api_key)
        reply = await ask(info.context.entities, config, message, conversationId)
        return AgentReply(
            conversationId=strawberry.ID(reply.conversation_id),
            reply=reply.reply,
            toolCalls=[AgentToolCall.of(c) for c in reply.tool_calls],
        )
