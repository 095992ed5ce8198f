"""The agent's tools over MCP (stdio, the official ``mcp`` SDK), acting as one user.

``tutoring mcp --token TOKEN`` verifies the token like the API does and serves the same
toolbox; every call runs with that user's permissions and is audited under them.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from app.platform.entities import ActorEntities
from app.tutoring.agent.tools import TOOLS


def build_server(entities: ActorEntities) -> Server[Any]:
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
        result = await TOOLS.call(entities, params.name, params.arguments or {})
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result))],
            structuredContent=result,
            isError=not result["ok"],
        )

    return Server("tutoring", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(entities: ActorEntities) -> None:
    server = build_server(entities)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
