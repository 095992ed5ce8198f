"""A child process that renders ONE template under hard limits, then exits.

Run as ``python -m app.platform.template_worker [module ...]`` by ``app.platform.templates``,
which owns the process: the modules named on the command line are imported up front so a warm
worker pays for them before a request is waiting. The worker speaks line-delimited JSON:

* stdin, once: the job ``{"source", "data", "sources", "filters", "maxChars", "maxCalls",
  "maxSteps", "memoryBytes", "seconds"}``;
* stdout: ``{"started": true}`` once the limits are in place (the parent's clock starts
  here), then any number of ``{"call": [source, method], "args": [...], "kwargs": {...}}``,
  each answered on stdin by ``{"result": ...}``, then one ``{"done": text}`` or
  ``{"refused": kind, "detail": text}``.

Data calls go back to the parent because the data lives there and must be read as the
calling user; this process holds nothing worth stealing (its environment is empty of secrets)
and cannot use more than ``memoryBytes`` of address space or much more CPU than ``seconds``.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import resource
import sys
import types
from collections.abc import Callable, Mapping
from typing import IO, Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SecurityError

from app.platform.template_sandbox import MAX_STEPS, MAX_VALUE, BoundedSandbox, Budget

MAX_CALL_BYTES = 10_000  # one data call's JSON, as the child sends it
EXIT_OUT_OF_MEMORY = 3


class _TooLong(Exception):
    pass


def _line(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class DataCalls:
    """The template's side of data calls: a blocking request/reply over the pipes."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes], max_calls: int) -> None:
        self._reader, self._writer = reader, writer
        self._left = self.max_calls = max_calls

    def source(self, name: str, methods: list[str]) -> types.SimpleNamespace:
        return types.SimpleNamespace(**{m: functools.partial(self.call, name, m) for m in methods})

    def call(self, source: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self._left -= 1
        if self._left < 0:
            raise SecurityError(f"the template makes more than {self.max_calls} data calls")
        try:
            request = _line({"call": [source, method], "args": args, "kwargs": kwargs})
        except (TypeError, ValueError):
            raise TypeError(f"{source}.{method} takes only plain data") from None
        if len(request) > MAX_CALL_BYTES:
            raise SecurityError(f"a data call's arguments exceed {MAX_CALL_BYTES} bytes")
        self._writer.write(request)
        self._writer.flush()
        reply = self._reader.readline()
        if not reply:
            os._exit(0)  # the parent gave up on this render
        return json.loads(reply)["result"]


def _filter(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _limit(memory_bytes: int, seconds: float) -> None:
    """Hard limits for the rest of this process's life; set before any template code runs."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(used.ru_utime + used.ru_stime + seconds) + 1  # the parent kills first
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    os.nice(10)  # when CPUs are scarce, the server's event loop goes first


def render(job: Mapping[str, Any], calls: DataCalls, filters: Mapping[str, Any]) -> str:
    env = BoundedSandbox(Budget(job.get("maxSteps", MAX_STEPS), MAX_VALUE), filters)
    context = dict(job["data"])
    context.update({name: calls.source(name, m) for name, m in job["sources"].items()})
    out: list[str] = []
    size = 0
    for chunk in env.from_string(job["source"]).generate(**context):
        size += len(chunk)
        if size > job["maxChars"]:
            raise _TooLong
        out.append(chunk)
    return "".join(out)


def _refusal(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, SecurityError):
        return {"refused": "unsafe", "detail": str(exc)[:300]}
    if isinstance(exc, _TooLong):
        return {"refused": "too long", "detail": ""}
    if isinstance(exc, TemplateSyntaxError):
        detail = f"TemplateSyntaxError: {exc.message} (line {exc.lineno})"
        return {"refused": "invalid", "detail": detail[:300]}
    return {"refused": "invalid", "detail": type(exc).__name__}


def main(preload: list[str]) -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the protocol may reach the parent's pipe
    for module in preload:
        importlib.import_module(module)
    line = stdin.readline()
    if not line:
        os._exit(0)  # a warm worker that was never used
    job = json.loads(line)
    filters = {name: _filter(path) for name, path in job["filters"].items()}
    out_of_memory = _line({"refused": "memory", "detail": ""})
    _limit(job["memoryBytes"], job["seconds"])
    stdout.write(_line({"started": True}))
    stdout.flush()
    try:
        reply = _line({"done": render(job, DataCalls(stdin, stdout, job["maxCalls"]), filters)})
    except MemoryError:
        reply = out_of_memory
    except Exception as exc:
        reply = _refusal(exc)
    try:
        stdout.write(reply if isinstance(reply, bytes) else _line(reply))
        stdout.flush()
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
