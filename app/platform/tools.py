"""Tools an agent can call: a name, a description, a JSON Schema for the arguments, and a
function that runs as the calling actor through the same services as every transport.

A refusal is a result, not an exception: ``{"ok": false, "error": {"code": ..., "message":
...}}`` with the contract's code, so a model can read why and try something else. Every call
is audited with the actor, the tool and whether it succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jsonschema import Draft202012Validator

from app.platform.entities import ActorEntities
from app.platform.errors import AppError, BadUserInput, ErrorCode
from app.platform.inputs import check_json

log = logging.getLogger(__name__)

ToolFunction = Callable[[ActorEntities, Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    run: ToolFunction


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


class Toolbox:
    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = {t.name: t for t in tools}

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in self.tools.values()
        ]

    async def call(
        self, entities: ActorEntities, name: str, arguments: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Runs a tool as ``entities.actor``; never raises for a refusal."""
        tool = self.tools.get(name)
        try:
            if tool is None:
                raise BadUserInput(
                    f"No tool {name[:60]!r}; available: {', '.join(sorted(self.tools))}.",
                    {"name": "unknown tool"},
                )
            if arguments is not None and not isinstance(arguments, Mapping):
                raise BadUserInput(
                    "Tool arguments must be a JSON object.", {"arguments": "not an object"}
                )
            args = dict(arguments or {})
            check_json(args, name="arguments")
            errors = {
                ".".join(map(str, e.absolute_path)) or "(arguments)": e.message
                for e in Draft202012Validator(tool.parameters).iter_errors(args)
            }
            if errors:
                raise BadUserInput(f"Invalid arguments for {name}.", errors)
            result: dict[str, Any] = {
                "ok": True,
                "result": jsonable(await tool.run(entities, args)),
            }
        except AppError as exc:
            result = {"ok": False, "error": jsonable(exc.to_dict())}
        except Exception:
            log.exception("tool %s failed", name)
            result = {
                "ok": False,
                "error": {
                    "code": str(ErrorCode.INTERNAL),
                    "message": "The tool failed unexpectedly.",
                },
            }
        await entities.service.audit.record(
            entities.actor,
            "agent.tool",
            at=entities.service.clock(),
            extra={
                "tool": name[:100],
                "ok": result["ok"],
                "code": None if result["ok"] else result["error"]["code"],
            },
        )
        return result
