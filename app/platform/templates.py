"""Prompt templates rendered in a sandboxed child process with hard limits.

Every organization is served from one event loop, so rendering an admin's template on it
would let one template stall everybody; in-process checks on a Python sandbox are also never
complete. So a template renders in a worker process (``app.platform.template_worker``) that
renders one template and exits: it cannot use more than ``memory_mb`` of address space, is
killed after ``seconds`` of rendering, starts with an environment holding no secrets, and the
number of renders running at once is bounded, so memory is bounded overall. Inside the worker
a per-iteration budget (``app.platform.template_sandbox``) refuses the usual runaway templates
early, with a message that says why.

Data stays here: context values that are ``DataSource``\\ s are called back in this process
(as the calling user) when the template calls them, and the template sees their JSON results.
Filters are named by import path, because a function cannot be sent to another process.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Awaitable, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, ClassVar

from app.platform.errors import AppError, BadUserInput
from app.platform.template_sandbox import MAX_STEPS

MAX_CHARS = 20_000
TIMEOUT_SECONDS = 1.0  # of rendering; time spent answering data calls is not counted
MEMORY_MB = 256  # address space of one worker
MAX_DATA_CALLS = 20
MAX_CONCURRENT_RENDERS = max(2, min(4, os.cpu_count() or 2))
STARTUP_SECONDS = 10.0  # a worker that cannot start is our fault, not the template's
_WORKER = "app.platform.template_worker"
_ROOT = str(Path(__file__).resolve().parents[2])  # the directory that holds ``app``
# Errors a data source raises because of the template's arguments, not a fault of ours.
_TEMPLATE_ERRORS = (TypeError, ValueError, AttributeError, LookupError, ArithmeticError)


class DataSource:
    """A context value whose ``template_methods`` a template may call. They run in this
    process when the template calls them, so they read data as the user the render is for."""

    template_methods: ClassVar[frozenset[str]] = frozenset()


class _Refused(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind, self.detail = kind, detail


def _refusal(exc: _Refused, *, max_chars: int, seconds: float, memory_mb: int) -> BadUserInput:
    if exc.kind == "unsafe":
        return BadUserInput(f"The template is not allowed: {exc.detail}", {"template": "unsafe"})
    if exc.kind == "too long":
        return BadUserInput(
            f"The rendered prompt exceeds {max_chars} characters.", {"template": "too long"}
        )
    if exc.kind == "too slow":
        return BadUserInput(
            f"The template took longer than {seconds:g} s to render.", {"template": "too slow"}
        )
    if exc.kind == "memory":
        return BadUserInput(
            f"The template used more than {memory_mb} MB to render.", {"template": "too large"}
        )
    if exc.kind == "invalid":
        return BadUserInput(f"The template failed: {exc.detail}", {"template": "invalid"})
    return BadUserInput("The template stopped its renderer unexpectedly.", {"template": "invalid"})


# -- worker processes -------------------------------------------------------------------------


class _Workers:
    """Spawns workers and keeps one warm, so a render does not wait for Python to start.

    Workers are plain ``subprocess.Popen`` children, not asyncio ones, so the warm worker
    belongs to no event loop; each gets a thread that waits for it, so none is left a zombie
    whichever way it ends (a render's own pipes are attached to the loop that uses it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warm: subprocess.Popen[bytes] | None = None
        self._owner = 0
        self._preload: set[str] = set()

    def take(self, modules: set[str]) -> subprocess.Popen[bytes]:
        with self._lock:
            self._preload |= modules
            warm, self._warm = self._warm, None
            if warm is not None and (warm.poll() is not None or self._owner != os.getpid()):
                _close_pipes(warm)  # it died, or came with a fork and is not ours to use
                warm = None
            worker = warm or self._spawn()
            try:
                self._warm, self._owner = self._spawn(), os.getpid()
            except OSError:
                self._warm = None  # only the head start is lost; the next render tries again
            return worker

    def close(self) -> None:
        """Stops the warm worker; the next render starts a new one."""
        with self._lock:
            warm, self._warm = self._warm, None
        if warm is not None and self._owner == os.getpid():
            warm.kill()
        if warm is not None:
            _close_pipes(warm)

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-s", "-m", _WORKER, *sorted(self._preload)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=_ROOT,
            env={"PYTHONPATH": _ROOT, "PATH": os.defpath},  # nothing from os.environ
            close_fds=True,
            start_new_session=True,  # a terminal's Ctrl-C is for the server, not the workers
        )
        try:
            reaper = threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True)
            reaper.start()
        except RuntimeError:  # no thread to wait for it: do not start what nobody reaps
            proc.kill()
            proc.wait()
            _close_pipes(proc)
            raise
        return proc


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


_workers = _Workers()
atexit.register(_workers.close)
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _semaphore() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _semaphores:
        _semaphores[loop] = asyncio.Semaphore(MAX_CONCURRENT_RENDERS)
    return _semaphores[loop]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be passed to a template")


def _line(message: Any) -> bytes:
    return json.dumps(message, default=_jsonable, separators=(",", ":")).encode() + b"\n"


class _Render:
    """One render's conversation with its worker; the worker is killed when it ends."""

    def __init__(self, sources: Mapping[str, DataSource], max_chars: int, seconds: float) -> None:
        self.sources, self.max_chars, self.left = sources, max_chars, seconds
        self.calls = 0
        self.reader = asyncio.StreamReader(limit=6 * max_chars + 16_384)
        self.writer: asyncio.StreamWriter | None = None

    async def _timed(self, aw: Awaitable[Any]) -> Any:
        """``aw`` on the worker's clock: the render may spend ``seconds`` waiting on it."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(self.left):
                return await aw
        except TimeoutError:
            raise _Refused("too slow") from None
        finally:
            self.left -= loop.time() - start

    async def _receive(self, timed: bool = True) -> dict[str, Any]:
        try:
            if timed:
                line = await self._timed(self.reader.readline())
            else:
                async with asyncio.timeout(STARTUP_SECONDS):
                    line = await self.reader.readline()
        except ValueError:  # longer than the reader's limit
            raise _Refused("too long") from None
        if not line:
            raise EOFError
        try:
            message = json.loads(line)
        except ValueError:
            raise _Refused("crashed") from None
        if not isinstance(message, dict):
            raise _Refused("crashed")
        return message

    async def _send(self, message: Any) -> None:
        assert self.writer is not None
        self.writer.write(_line(message))
        try:
            await self._timed(self.writer.drain())
        except ConnectionError:
            raise _Refused("crashed") from None

    async def _answer(self, message: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls > MAX_DATA_CALLS:
            raise _Refused("unsafe", f"the template makes more than {MAX_DATA_CALLS} data calls")
        match message:
            case {"call": [str(name), str(method)], "args": list(args), "kwargs": dict(kwargs)}:
                source = self.sources.get(name)
            case _:
                raise _Refused("crashed")
        if source is None or method not in source.template_methods:
            raise _Refused("crashed")  # the worker asked for something it was never offered
        try:
            result = getattr(source, method)(*args, **kwargs)
            if isinstance(result, Awaitable):
                result = await result
        except AppError:
            raise
        except _TEMPLATE_ERRORS as exc:
            raise _Refused("invalid", type(exc).__name__) from None
        await self._send({"result": result})

    async def run(self, proc: subprocess.Popen[bytes], job: bytes) -> str:
        loop = asyncio.get_running_loop()
        reading, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self.reader), proc.stdout
        )
        try:
            writing, protocol = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, proc.stdin
            )
            try:
                self.writer = asyncio.StreamWriter(writing, protocol, None, loop)
                return await self._converse(proc, job)
            finally:
                if not writing.is_closing():  # it is once the worker has exited
                    writing.abort()  # drops anything unsent: the worker is about to be killed
        finally:
            reading.close()

    async def _converse(self, proc: subprocess.Popen[bytes], job: bytes) -> str:
        assert self.writer is not None
        self.writer.write(job)
        try:
            async with asyncio.timeout(STARTUP_SECONDS):
                await self.writer.drain()
            if await self._receive(timed=False) != {"started": True}:
                raise _Refused("crashed")
        except (EOFError, TimeoutError, ConnectionError) as exc:
            raise RuntimeError("the template worker did not start") from exc
        while True:
            try:
                message = await self._receive()
            except EOFError:
                raise _Refused(await _exit_kind(proc)) from None
            if "call" in message:
                await self._answer(message)
            elif "done" in message:
                text = message["done"]
                if not isinstance(text, str) or len(text) > self.max_chars:
                    raise _Refused("too long")
                return text
            elif "refused" in message:
                raise _Refused(str(message["refused"]), str(message.get("detail", ""))[:300])
            else:
                raise _Refused("crashed")


async def _exit_kind(proc: subprocess.Popen[bytes]) -> str:
    """Why a worker closed its pipe without an answer: its limits stopped it, or it crashed."""
    for _ in range(100):
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.01)
    if proc.returncode == 3:  # template_worker.EXIT_OUT_OF_MEMORY
        return "memory"
    if proc.returncode == -24:  # SIGXCPU: its CPU limit, a backstop for our clock
        return "too slow"
    return "crashed"


async def render(
    source: str,
    context: Mapping[str, Any],
    *,
    filters: Mapping[str, str],
    max_chars: int = MAX_CHARS,
    seconds: float = TIMEOUT_SECONDS,
    memory_mb: int = MEMORY_MB,
) -> str:
    """``source`` rendered with ``context``; ``BAD_USER_INPUT`` for a template that is
    invalid, unsafe, too long, too slow or too large.

    ``context`` holds JSON-able values (datetimes become ISO strings) and, at its top level,
    ``DataSource``\\ s. ``filters`` maps a filter's name to ``"module:function"``; the function
    receives JSON data. Errors a data source raises as ``AppError`` reach the caller as-is."""
    if len(source) > max_chars:
        raise BadUserInput(
            f"The template exceeds {max_chars} characters.", {"template": "too long"}
        )
    sources = {k: v for k, v in context.items() if isinstance(v, DataSource)}
    job = {
        "source": source,
        "data": {k: v for k, v in context.items() if k not in sources},
        "sources": {k: sorted(v.template_methods) for k, v in sources.items()},
        "filters": dict(filters),
        "maxChars": max_chars,
        "maxCalls": MAX_DATA_CALLS,
        "maxSteps": MAX_STEPS,
        "memoryBytes": memory_mb * 2**20,
        "seconds": seconds,
    }
    request = _line(job)  # a context that is not JSON is the caller's bug: fail before spawning
    modules = {path.partition(":")[0] for path in filters.values()}
    async with _semaphore():
        proc = _workers.take(modules)
        try:
            return await _Render(sources, max_chars, seconds).run(proc, request)
        except _Refused as exc:
            raise _refusal(exc, max_chars=max_chars, seconds=seconds, memory_mb=memory_mb) from None
        finally:
            proc.kill()  # a no-op once it has exited; its waiting thread reaps it
