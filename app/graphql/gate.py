"""The HTTP door in front of GraphQL: bearer authentication, rate limits and a body cap.

Everything here happens before Strawberry sees the request, so a refused request costs no
parsing: a missing or bad token is HTTP 401 with a single ``UNAUTHENTICATED`` error and
nothing else; a caller over its rate is HTTP 429 with ``Retry-After``; an oversized body is
HTTP 413. The browser's GET for GraphiQL needs no token (the page holds no data).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from app.platform import logs
from app.platform.errors import ErrorCode, RateLimited, Unauthenticated
from app.runtime import Runtime

MAX_BODY_BYTES = 256 * 1024
BODY_SECONDS = 10.0
NO_COST = {"requestedQueryCost": 0, "actualQueryCost": 0}


def error_response(
    status: int,
    message: str,
    code: ErrorCode,
    headers: dict[str, str] | None = None,
    *,
    details: dict[str, Any] | None = None,
    cost: bool = True,
) -> JSONResponse:
    """A GraphQL-shaped error body for refusals made outside GraphQL execution."""
    body: dict[str, Any] = {
        "errors": [{"message": message, "extensions": {"code": str(code), **(details or {})}}]
    }
    if cost:  # the contract's 401 body carries nothing else
        body["extensions"] = {"cost": NO_COST}
    return JSONResponse(body, status_code=status, headers=headers)


def new_request_id() -> str:
    return os.urandom(8).hex()


def header(scope: Scope, name: bytes) -> str | None:
    """A request header, straight from the ASGI scope (names are lower-case there)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def wants_ide(scope: Scope) -> bool:
    return scope.get("method") == "GET" and "text/html" in (header(scope, b"accept") or "")


class RequestIds:
    """Gives every request an id: the caller's ``X-Request-ID`` when it looks like one (so a
    client's or a proxy's id follows the request into our logs and jobs), else a new one. The
    id is bound for logging and echoed in the response's ``X-Request-ID``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id")
        rid = logs.valid_request_id(incoming) or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
            await send(message)

        with logs.bound(request=rid):
            await self.app(scope, receive, send_with_id)


class BearerGate:
    def __init__(self, app: Any, runtime: Runtime, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.runtime = runtime
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or wants_ide(scope):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id") or new_request_id()
        headers: dict[str, str] = {}
        auth = header(scope, b"authorization") or ""
        scheme, _, token = auth.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("The bearer token is missing, invalid or expired.")
            identity = await self.runtime.verifier.verify(token.strip())
        except Unauthenticated as exc:
            response = error_response(
                401,
                exc.message,
                ErrorCode.UNAUTHENTICATED,
                {**headers, "WWW-Authenticate": "Bearer"},
                cost=False,
            )
            await response(scope, receive, send)
            return
        logs.organization_id.set(identity.organization_id)
        logs.user_id.set(identity.user_id)
        limiter = self.runtime.rate_limiter
        if limiter is not None:
            try:
                await limiter.hit(identity.organization_id, identity.user_id)
            except RateLimited as exc:
                retry = {**headers, "Retry-After": str(exc.retry_after)}
                response = error_response(
                    429, exc.message, ErrorCode.RATE_LIMITED, retry, details=exc.details
                )
                await response(scope, receive, send)
                return
        try:
            async with asyncio.timeout(BODY_SECONDS):
                body = await self._read_capped(receive)
        except TimeoutError:
            response = error_response(
                408,
                f"The request body did not arrive within {BODY_SECONDS:g} s.",
                ErrorCode.BAD_USER_INPUT,
                {**headers, "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        if body is None:
            response = error_response(
                413,
                f"The request body exceeds {self.max_body} bytes; send a smaller query.",
                ErrorCode.QUERY_TOO_COMPLEX,
                headers,
            )
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["identity"] = identity
        state["request_id"] = request_id
        await self.app(scope, _replay(body), send)

    async def _read_capped(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
