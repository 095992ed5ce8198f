"""The baselines of ``compare.py``: bare Strawberry apps serving the same page shapes.

- ``list_app(seeded, cached)``: the sessions from a Python list, no auth, no store; with or
  without Strawberry's parser and validation caches.
- ``store_app(store)``: the same mongomock-backed store the project uses, read with one query
  per page, one count and a DataLoader per related type -- everything the project does to
  serve the page, minus authentication, permissions, scopes and masks (and with the same
  caches, which do not depend on permissions).

The page asked for (teacher or admin) travels in an ``X-Bench-Role`` header: the teacher's
page holds Teacher T1's sessions, the admin's every session.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.dataloader import DataLoader
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import Info

from bench.seed import ORG, Seeded

TYPES = ("student", "teacher", "guardian")


@strawberry.enum
class SessionStatus(Enum):
    PENDING_PAYMENT = "pending_payment"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


@strawberry.enum
class SessionOrderField(Enum):
    START_TIME = "startTime"


@strawberry.input
class SessionOrder:
    field: SessionOrderField


@strawberry.type
class Named:
    name: str | None


@strawberry.type
class Session:
    id: strawberry.ID
    startTime: datetime | None
    status: SessionStatus | None
    subject: str | None
    _student: strawberry.Private[str]
    _teacher: strawberry.Private[str]
    _guardian: strawberry.Private[str]

    @strawberry.field
    async def student(self, info: Info) -> Named | None:
        return await info.context["student"].load(self._student)

    @strawberry.field
    async def teacher(self, info: Info) -> Named | None:
        return await info.context["teacher"].load(self._teacher)

    @strawberry.field
    async def guardian(self, info: Info) -> Named | None:
        return await info.context["guardian"].load(self._guardian)


@strawberry.type
class Edge:
    cursor: str
    node: Session


@strawberry.type
class SessionConnection:
    totalCount: int
    edges: list[Edge]


def _session(doc_id: str, data: dict[str, Any]) -> Session:
    return Session(
        id=strawberry.ID(doc_id),
        startTime=data["startTime"],
        status=SessionStatus(data["status"]),
        subject=data.get("subject"),
        _student=data["studentId"],
        _teacher=data["teacherId"],
        _guardian=data["guardianId"],
    )


def _schema(query: type, cached: bool) -> strawberry.Schema:
    extensions = [lambda: ParserCache(maxsize=128), lambda: ValidationCache(maxsize=128)]
    return strawberry.Schema(query=query, extensions=extensions if cached else [])


class _App(GraphQL):
    def __init__(self, schema: strawberry.Schema, context: Any) -> None:
        super().__init__(schema, graphql_ide=None)
        self._make_context = context

    async def get_context(self, request: Request, response: Any) -> dict[str, Any]:
        return self._make_context(request.headers.get("x-bench-role", "admin"))


def list_app(seeded: Seeded, *, cached: bool) -> GraphQL:
    sessions = sorted(seeded.sessions, key=lambda s: (s["startTime"], s["id"]))
    people = {i: Named(name=n) for i, n in seeded.names.items()}
    teacher = seeded.ids["T1"]

    @strawberry.type
    class Query:
        @strawberry.field
        async def sessions(
            self, info: Info, first: int = 20, orderBy: list[SessionOrder] | None = None
        ) -> SessionConnection:
            role = info.context["role"]
            mine = [s for s in sessions if role == "admin" or s["teacherId"] == teacher]
            edges = [Edge(cursor=s["id"], node=_session(s["id"], s)) for s in mine[:first]]
            return SessionConnection(totalCount=len(mine), edges=edges)

    async def load(ids: list[str]) -> list[Named | None]:
        return [people.get(i) for i in ids]

    def context(role: str) -> dict[str, Any]:
        return {"role": role, **{t: DataLoader(load_fn=load) for t in TYPES}}

    return _App(_schema(Query, cached), context)


def store_app(store: Any, seeded: Seeded) -> GraphQL:
    entities = store.collection("entities")
    teacher = seeded.ids["T1"]

    @strawberry.type
    class Query:
        @strawberry.field
        async def sessions(
            self, info: Info, first: int = 20, orderBy: list[SessionOrder] | None = None
        ) -> SessionConnection:
            where: dict[str, Any] = {"type": "session"}
            if info.context["role"] != "admin":
                where["data.teacherId"] = teacher
            docs = await entities.find(
                ORG, where, sort=[("data.startTime", 1), ("_id", 1)], limit=first + 1
            )
            total = await entities.count(ORG, where)
            edges = [Edge(cursor=d["_id"], node=_session(d["_id"], d["data"])) for d in docs]
            return SessionConnection(totalCount=total, edges=edges[:first])

    def loader(slug: str) -> DataLoader[str, Named | None]:
        async def load(ids: list[str]) -> list[Named | None]:
            query = {"_id": {"$in": sorted(set(ids))}, "type": slug}
            found = {
                d["_id"]: Named(name=d["data"].get("name")) for d in await entities.find(ORG, query)
            }
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    def context(role: str) -> dict[str, Any]:
        return {"role": role, **{t: loader(t) for t in TYPES}}

    return _App(_schema(Query, cached=True), context)
