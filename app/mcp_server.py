"""The agent's tools over MCP (stdio, the official ``mcp`` SDK), acting as one user.

``tutoring mcp --token TOKEN`` (or ``TUTORING_TOKEN`` in the environment, which process
listings do not show) verifies the token like the API does and serves the same toolbox; every
call runs with that user's permissions and is audited under them.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from app.platform.errors import Unauthenticated
from app.runtime import Runtime
from app.tutoring.agent.tools import TOOLS


def build_server(runtime: Runtime, token: str) -> Server[Any]:
    """Each call verifies the token again and loads the user's permissions afresh, so an
    expired token or a changed role takes effect in a long-running session."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=t["name"], description=t["description"], inputSchema=t["parameters"]
                )
                for t in TOOLS.describe()
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            actor = await runtime.actors.resolve(await runtime.verifier.verify(token))
        except Unauthenticated as exc:
            result = {"ok": False, "error": exc.to_dict()}
        else:
            entities = await runtime.entities.for_actor(actor)
            result = await TOOLS.call(entities, params.name, params.arguments or {})
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result))],
            structuredContent=result,
            isError=not result["ok"],
        )

    return Server("tutoring", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(runtime: Runtime, token: str) -> None:
    await runtime.verifier.verify(token)  # refuse to start with a bad token
    server = build_server(runtime, token)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
