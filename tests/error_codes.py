"""The error codes each mutation returned during the test run, checked against the README.

The README's table "Error codes of each mutation" is what frontend teams code against. Every
response to a mutation that the test suite's HTTP clients receive is recorded here (the
mutation is the root field an error's ``path`` starts at, aliases resolved); at the end of the
run, a code a mutation returned that its row does not list fails the run
(``tests/conftest.py``), so the table can only lag the code by failing CI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_TITLE = "### Error codes of each mutation"
EVERY = "every mutation"

SEEN: set[tuple[str, str]] = set()  # (mutation, code)


def documented() -> dict[str, set[str]]:
    """Mutation (or ``EVERY``) -> the codes its README row lists."""
    text = README.read_text()
    start = text.index(TABLE_TITLE)
    end = text.find("\n#", start + len(TABLE_TITLE))
    rows: dict[str, set[str]] = {}
    for line in text[start : end if end != -1 else None].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not line.startswith("|") or cells[0] in ("mutation", "---"):
            continue
        names = re.findall(r"`(\w+)`", cells[0]) or [cells[0]]
        for name in names:
            rows[name] = set(re.findall(r"`([A-Z_]+)`", cells[1]))
    return rows


def _mutation_fields(body: dict) -> dict[str, str]:
    """Response key -> root field of the mutation ``body`` sends (empty for queries)."""
    try:
        document = parse(body["query"])
    except (GraphQLError, KeyError, TypeError):
        return {}
    name = body.get("operationName")
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if name and (definition.name is None or definition.name.value != name):
            continue
        if definition.operation is not OperationType.MUTATION:
            return {}
        return {
            (s.alias or s.name).value: s.name.value
            for s in definition.selection_set.selections
            if isinstance(s, FieldNode)
        }
    return {}


async def record(response: httpx.Response) -> None:
    """An httpx response hook: remembers (mutation, code) of a GraphQL answer's errors."""
    request = response.request
    if request.method != "POST" or not request.url.path.endswith("/graphql"):
        return
    await response.aread()
    try:
        sent, answer = json.loads(request.content), response.json()
    except (ValueError, RecursionError):  # the hostile bodies some tests send
        return
    for body, reply in zip(*_batches(sent, answer), strict=False):
        fields = _mutation_fields(body)
        for error in reply.get("errors") or []:
            path, code = error.get("path") or [], (error.get("extensions") or {}).get("code")
            if path and code and path[0] in fields:
                SEEN.add((fields[path[0]], code))


def _batches(sent: object, answer: object) -> tuple[list[dict], list[dict]]:
    if isinstance(sent, dict) and isinstance(answer, dict):
        return [sent], [answer]
    if isinstance(sent, list) and isinstance(answer, list):
        pairs = [(s, a) for s, a in zip(sent, answer, strict=False) if isinstance(s, dict)]
        return [s for s, _ in pairs], [a for _, a in pairs if isinstance(a, dict)]
    return [], []


def undocumented() -> list[str]:
    rows = documented()
    common = rows.get(EVERY, set())
    return sorted(
        f"{mutation}: {code}"
        for mutation, code in SEEN
        if code not in common and code not in rows.get(mutation, set())
    )
