"""Compensation for operations that must write more than one document.

MongoDB makes each single-document write atomic; an operation that writes several documents
(a booking: calendar claims, a credit reservation, a payment, the session, its jobs, their
audit entries) runs inside ``undo_on_failure()``. Every platform write made inside it
registers how to take itself back -- the entity service, the calendar, the job service and
the audit log do so by themselves -- and domain code adds the inverse of its own conditional
updates (a released credit for a reserved one). If a later step fails -- a rule refuses, the
store errors, the request is cancelled -- the registered steps run in reverse order and the
operation leaves nothing a user can see, audit entries included.

Scopes nest: an inner operation that succeeds hands its steps to the outer one, so a failure
of the outer operation takes back the inner one too. Compensations run shielded from
cancellation and write no audit entries of their own (the entries they take back are
removed instead); one that fails is logged with what it could not undo, never hidden.

What must only happen once the writes are certain -- announcing them to live subscribers --
is held back with ``defer_until_commit``: it travels up with the steps and is handed to its
owner when the outermost operation succeeds, and dropped when it fails, so no announcement
ever claims a change that was taken back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Protocol

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[Any]]

_current: ContextVar[Undo | None] = ContextVar("undo", default=None)
_compensating: ContextVar[bool] = ContextVar("compensating", default=False)


class Committer(Protocol):
    """Receives, in order, what was deferred until the outermost operation succeeded."""

    async def commit(self, items: list[Any]) -> None: ...


class Undo:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Step]] = []
        self._deferred: dict[Committer, list[Any]] = {}

    def push(self, what: str, step: Step) -> None:
        """Registers how to take back a write that has just succeeded."""
        self._steps.append((what, step))

    def defer(self, owner: Committer, item: Any) -> None:
        self._deferred.setdefault(owner, []).append(item)

    def adopt(self, other: Undo) -> None:
        self._steps.extend(other._steps)
        other._steps = []
        for owner, items in other._deferred.items():
            self._deferred.setdefault(owner, []).extend(items)
        other._deferred = {}

    async def commit(self) -> None:
        """Hands what was deferred to its owners: the operation succeeded. A failing owner
        is logged; the writes themselves stand."""
        deferred, self._deferred = self._deferred, {}
        for owner, items in deferred.items():
            try:
                await owner.commit(items)
            except Exception:
                log.exception("could not hand over what %s deferred until commit", owner)

    async def run(self) -> None:
        self._deferred = {}  # nothing of a failed operation is announced
        token = _compensating.set(True)
        try:
            while self._steps:
                what, step = self._steps.pop()
                try:
                    await step()
                except Exception:
                    log.exception("could not undo %s; it stays written", what)
        finally:
            _compensating.reset(token)


def register(what: str, step: Step) -> None:
    """Registers a compensation with the operation in progress, if any (writes made outside
    every operation are single writes and need none)."""
    undo = _current.get()
    if undo is not None and not _compensating.get():
        undo.push(what, step)


def defer_until_commit(owner: Committer, item: Any) -> bool:
    """Holds ``item`` for ``owner`` until the outermost operation in progress succeeds
    (dropped if it fails). While compensations run the item is dropped too: a write that
    takes another back restores what was announced before. False when no operation is in
    progress: the write is already final and the caller hands the item over itself."""
    if _compensating.get():
        return True
    undo = _current.get()
    if undo is None:
        return False
    undo.defer(owner, item)
    return True


def in_operation() -> bool:
    """True inside an operation that may still be undone: writers that need to read what
    they are about to change, to register its inverse, only pay for that read then."""
    return _current.get() is not None and not _compensating.get()


def compensating() -> bool:
    """True while compensations run: they write no audit entries of their own."""
    return _compensating.get()


@asynccontextmanager
async def undo_on_failure() -> AsyncIterator[Undo]:
    """``async with undo_on_failure() as undo:`` -- on any exception, including
    cancellation, the compensations registered inside run before the exception propagates."""
    parent = _current.get()
    undo = Undo()
    token = _current.set(undo)
    try:
        yield undo
    except BaseException:
        _current.reset(token)
        await asyncio.shield(undo.run())
        raise
    _current.reset(token)
    if parent is not None:
        parent.adopt(undo)
    else:  # the outermost operation succeeded: its writes are final
        await asyncio.shield(undo.commit())
