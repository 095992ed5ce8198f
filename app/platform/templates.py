"""Prompt templates rendered in Jinja2's immutable sandbox, bounded in size and time.

Templates are code an admin writes; entity data only ever enters as values, so a guardian
named ``{{ 7*7 }}`` renders literally. The sandbox refuses attribute access to Python
internals (``__class__``, ``__globals__`` ...), there is no loader (no ``import``/``include``),
ranges are capped by the sandbox, and rendering stops past ``max_chars`` or ``timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from app.platform.errors import BadUserInput

MAX_CHARS = 20_000
TIMEOUT_SECONDS = 5.0


class _TooLong(Exception):
    pass


def environment(filters: Mapping[str, Callable[..., Any]]) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(enable_async=True, autoescape=False)
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
    env = environment(filters)

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
    except (TemplateError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise BadUserInput(f"The template failed: {exc}", {"template": "invalid"}) from None
