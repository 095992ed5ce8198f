"""Prompt templates rendered in Jinja2's immutable sandbox, with a work budget.

Templates are code an admin writes; entity data only ever enters as values, so a guardian
named ``{{ 7*7 }}`` renders literally. The sandbox refuses Python internals (``__class__``,
``__globals__`` ...) and there is no loader (no ``import``/``include``). Because rendering runs
on the event loop and a tight template loop never yields, time cannot be the only bound: every
``range`` draws from one budget of iterations per render, ``*`` and ``**`` may not build huge
values, string methods and filters that pad or repeat text are refused, and output is capped.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from app.platform.errors import BadUserInput

MAX_CHARS = 20_000
TIMEOUT_SECONDS = 5.0
MAX_ITERATIONS = 10_000  # all ranges of one render together
MAX_VALUE_CHARS = 20_000  # a string or list built with * or **
_EXPANDING = {"format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs"}
_UNSAFE_FILTERS = ("center", "indent", "wordwrap", "format", "filesizeformat")


class _TooLong(Exception):
    pass


class _Budget:
    def __init__(self, iterations: int) -> None:
        self.left = iterations

    def range(self, *args: int) -> range:
        r = range(*args)
        self.left -= len(r)
        if self.left < 0:
            raise SecurityError(f"the template iterates more than {MAX_ITERATIONS} times")
        return r


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * max(times, 0) > MAX_VALUE_CHARS:
                        raise SecurityError("the template builds a value that is too large")
            return operator.mul(left, right)
        if operator_name == "**":
            if (
                not isinstance(right, int | float)
                or abs(right) > 64
                or (isinstance(left, int) and abs(left) > 10**6)
            ):
                raise SecurityError("the template raises a number to too large a power")
            return operator.pow(left, right)
        if isinstance(left, str):  # "%" formatting can pad to any width
            raise SecurityError("%-formatting of strings is not allowed in templates")
        return operator.mod(left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # The sandbox hands out str.format wrapped (``__wrapped__`` is the real method).
        method = getattr(__obj, "__wrapped__", __obj)
        if getattr(method, "__name__", None) in _EXPANDING and isinstance(
            getattr(method, "__self__", None), str
        ):
            raise SecurityError(f"str.{method.__name__} is not allowed in templates")
        return super().call(__context, __obj, *args, **kwargs)


def environment(filters: Mapping[str, Callable[..., Any]], budget: _Budget) -> BoundedSandbox:
    env = BoundedSandbox(enable_async=True, autoescape=False)
    for name in _UNSAFE_FILTERS:
        env.filters.pop(name, None)
    env.globals.pop("lipsum", None)
    env.globals["range"] = budget.range
    env.filters.update(filters)
    return env


async def render(
    source: str,
    context: Mapping[str, Any],
    *,
    filters: Mapping[str, Callable[..., Any]],
    max_chars: int = MAX_CHARS,
    seconds: float = TIMEOUT_SECONDS,
) -> str:
    """``BAD_USER_INPUT`` for a template that is invalid, unsafe, too long or too slow."""
    if len(source) > max_chars:
        raise BadUserInput(
            f"The template exceeds {max_chars} characters.", {"template": "too long"}
        )
    env = environment(filters, _Budget(MAX_ITERATIONS))

    async def produce() -> str:
        out: list[str] = []
        size = 0
        async for chunk in env.from_string(source).generate_async(**context):
            size += len(chunk)
            if size > max_chars:
                raise _TooLong
            out.append(chunk)
        return "".join(out)

    try:
        async with asyncio.timeout(seconds):
            return await produce()
    except SecurityError as exc:
        raise BadUserInput(f"The template is not allowed: {exc}", {"template": "unsafe"}) from None
    except _TooLong:
        raise BadUserInput(
            f"The rendered prompt exceeds {max_chars} characters.", {"template": "too long"}
        ) from None
    except TimeoutError:
        raise BadUserInput(
            f"The template took longer than {seconds:g} s to render.", {"template": "too slow"}
        ) from None
    except (
        TemplateError, TypeError, ValueError, AttributeError, LookupError, ArithmeticError,
        RecursionError, MemoryError,
    ) as exc:  # fmt: skip
        raise BadUserInput(
            f"The template failed: {type(exc).__name__}", {"template": "invalid"}
        ) from None
