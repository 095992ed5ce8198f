"""The Jinja2 sandbox a template renders in, inside the worker process, with a work budget.

Templates are code an admin writes; entity data only ever enters as values. The immutable
sandbox refuses Python internals (``__class__``, ``__globals__`` ...), there is no loader (no
``import``/``include``), ``lipsum`` and the padding filters and ``str`` methods are gone and
``%``-formatting of strings is refused.

This module only exists to refuse runaway templates early *with a message that says what went
wrong*: the worker's hard limits (memory, CPU, a parent that kills it on time) bound whatever
slips past these checks, so they aim at the common shapes, not at completeness:

* every ``{% for %}`` iterable is rewritten at parse time to draw one step per item (more for
  long items) from one budget per render; so do the items of ``map``, ``select`` and the like,
  and every call (macros, recursive ``loop(...)``, methods) draws one too;
* ``~``, ``+``, ``*``, ``replace``, ``join`` and ``sum`` may not build strings or lists longer
  than a bound, ``*`` and ``**`` may not build huge numbers.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes, pass_context, pass_environment, pass_eval_context
from jinja2.filters import (
    do_batch,
    do_replace,
    make_attrgetter,
    sync_do_map,
    sync_do_reject,
    sync_do_rejectattr,
    sync_do_select,
    sync_do_selectattr,
    sync_do_slice,
    sync_do_sum,
)
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

MAX_STEPS = 10_000  # loop iterations and calls of one render together
MAX_VALUE = 20_000  # characters of a string or items of a list an operation may build
MAX_INT_BITS = 4_096
_WEIGHT = 1_000  # characters or items of a value iterated over that count as one more step
_REFUSED_STR_METHODS = frozenset(
    {"format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs", "translate"}
)
_REMOVED_FILTERS = ("center", "indent", "wordwrap", "format", "filesizeformat")
_LAZY_FILTERS: dict[str, Callable[..., Any]] = {
    "map": sync_do_map, "select": sync_do_select, "reject": sync_do_reject,
    "selectattr": sync_do_selectattr, "rejectattr": sync_do_rejectattr,
}  # fmt: skip
# Internal filter names contain a space, so a template cannot name (or shadow) them.
_ITERATE = "budgeted iteration"
_SIZED = "sized value"


class Budget:
    """One render's allowance; shared by all loops and calls so nesting cannot multiply it."""

    def __init__(self, steps: int = MAX_STEPS, value: int = MAX_VALUE) -> None:
        self.steps = steps
        self.left = steps
        self.value = value

    def step(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise SecurityError(
                f"the template does more than {self.steps} steps of work (a loop iteration or "
                f"a call is one, an item longer than {_WEIGHT} counts more)"
            )

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Long items weigh more, as whatever the loop does with them likely costs more."""
        for item in iterable:
            sized = isinstance(item, str | list | tuple | dict)
            self.step(1 + len(item) // _WEIGHT if sized else 1)
            yield item

    def fits(self, size: int) -> None:
        if size > self.value:
            raise SecurityError(f"the template builds a value longer than {self.value}")

    def sized(self, value: Any) -> Any:
        if isinstance(value, str | list | tuple | dict):
            self.fits(len(value))
        return value

    def range(self, *args: int) -> range:
        r = range(*args)
        if len(r) > self.steps:
            raise SecurityError(f"the template builds a range of more than {self.steps} numbers")
        return r

    def replaced(self, s: str, old: str, new: str, count: int | None = None) -> None:
        """Refuses before ``str.replace`` runs: its result can be quadratic in its inputs."""
        hits = s.count(old) if old else len(s) + 1
        if count is not None and count >= 0:
            hits = min(hits, count)
        self.fits(len(s) + hits * (len(new) - len(old)))

    def join(self, sep: str, items: Iterable[Any]) -> str:
        parts: list[str] = []
        size = -len(sep)
        for item in items:
            part = str(item)
            size += len(sep) + len(part)
            self.fits(size)
            parts.append(part)
        return sep.join(parts)


class _Bounds(NodeTransformer):
    """Routes every loop's iterable and every ``~`` through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _ITERATE, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _SIZED, [], [], None, None, lineno=node.lineno)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, budget: Budget, filters: Mapping[str, Callable[..., Any]]) -> None:
        super().__init__(autoescape=False)
        self.budget = budget
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.globals.pop("lipsum", None)
        self.globals["range"] = budget.range
        self._bound_filters()
        self.filters.update(filters)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Bounds().visit(super()._parse(source, name, filename))
        tree.set_environment(self)  # the new Filter nodes need it for constant folding
        return tree

    def _bound_filters(self) -> None:
        budget = self.budget

        @pass_context  # pass_context also keeps the compiler from folding it into a constant
        def iterate(_: Context, value: Any) -> Iterator[Any]:
            return budget.iterate(value)

        @pass_eval_context
        def replace(ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
            budget.replaced(str(s), str(old), str(new), count)
            return do_replace(ctx, s, old, new, count)

        @pass_eval_context
        def join(ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
            if attribute is not None:
                value = map(make_attrgetter(ctx.environment, attribute), value)
            return budget.join(str(d), value)

        @pass_environment
        def sum_(env: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
            items = list(iterable)
            if not isinstance(start, int | float) or any(isinstance(i, str | list) for i in items):
                sizes = (len(i) for i in [start, *items] if isinstance(i, str | list | tuple))
                budget.fits(sum(sizes))
            return sync_do_sum(env, items, attribute=attribute, start=start)

        def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
            budget.fits(linecount)
            return do_batch(value, linecount, fill_with)

        def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
            budget.fits(slices)
            return sync_do_slice(value, slices, fill_with)

        self.filters.update({
            _ITERATE: iterate, _SIZED: budget.sized, "replace": replace, "join": join,
            "sum": sum_, "batch": batch, "slice": slice_,
        })  # fmt: skip
        for name, lazy in _LAZY_FILTERS.items():
            self.filters[name] = _iterating(lazy, budget)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        fits = self.budget.fits
        if operator_name == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                fits(len(left) + len(right))
            return operator.add(left, right)
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    fits(len(seq) * max(times, 0))
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise SecurityError("the template builds a number that is too large")
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

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.budget.step()
        if isinstance(__obj, LoopContext) and len(args) == 1:  # a recursive loop's loop(items)
            args = (__self.budget.iterate(args[0]),)
        # The sandbox hands out str.format wrapped (``__wrapped__`` is the real method).
        method = getattr(__obj, "__wrapped__", __obj)
        name, owner = getattr(method, "__name__", None), getattr(method, "__self__", None)
        if isinstance(owner, str):
            if name in _REFUSED_STR_METHODS:
                raise SecurityError(f"str.{name} is not allowed in templates")
            if name == "replace" and 2 <= len(args) <= 3 and not kwargs:
                if all(isinstance(a, str) for a in args[:2]):
                    __self.budget.replaced(owner, *args)
            if name == "join" and len(args) == 1 and not kwargs:
                return __self.budget.join(owner, args[0])
        return super().call(__context, __obj, *args, **kwargs)


def _iterating(lazy_filter: Callable[..., Any], budget: Budget) -> Callable[..., Any]:
    """``lazy_filter`` (``map``, ``select`` ...) with each item it yields drawn from ``budget``,
    so chains of them cannot do unbounded work outside a ``for``."""

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return budget.iterate(lazy_filter(context, value, *args, **kwargs))

    return bounded
