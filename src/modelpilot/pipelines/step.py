"""``@mp.step``: a plain Python function becomes a pipeline step.

Outside a pipeline a step is the function itself: ``load("x.csv")`` runs it, so steps stay
unit-testable. Inside a pipeline function being traced (:mod:`modelpilot.pipelines.graph`)
a call records a node of the graph and returns a lazy :class:`StepHandle` instead.

>>> @step(retries=1)
... def double(x: int) -> int:
...     return 2 * x
>>> double(21), double.name, double.retries
(42, 'double', 1)
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, overload

from modelpilot.errors import InvalidInput, shown
from modelpilot.tracking.validation import check_key

if TYPE_CHECKING:
    from modelpilot.pipelines.graph import Tracer

Fn = Callable[..., Any]

# The tracer of the pipeline function being traced in this thread/task, if any.
TRACING: ContextVar[Tracer | None] = ContextVar("modelpilot_pipeline_tracing", default=None)


class Step:
    """A function with a step's options; call it to run it (or, while tracing, to add it)."""

    def __init__(
        self, fn: Fn, *, name: str, retries: int, timeout_s: float | None, cache: bool
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name
        self.retries = retries
        self.timeout_s = timeout_s
        self.cache = cache

    @property
    def signature(self) -> inspect.Signature:
        """The wrapped function's signature."""
        return inspect.signature(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = TRACING.get()
        if tracer is None:
            return self.fn(*args, **kwargs)
        return tracer.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"Step({self.name!r}, retries={self.retries}, timeout_s={self.timeout_s})"


@overload
def step(fn: Fn, /) -> Step: ...


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    timeout_s: float | None = None,
    cache: bool = True,
) -> Callable[[Fn], Step]: ...


def step(
    fn: Fn | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    timeout_s: float | None = None,
    cache: bool = True,
) -> Step | Callable[[Fn], Step]:
    """Make ``fn`` a step: ``@step`` or ``@step(retries=2, timeout_s=600, cache=False)``.

    ``retries``: extra attempts after a failure; ``timeout_s``: the longest one attempt may
    run before its process is killed; ``cache``: reuse the recorded output when the step's
    code and the content of its inputs are unchanged.
    """
    check_options(retries, timeout_s, cache)

    def wrap(target: Fn) -> Step:
        if not callable(target) or isinstance(target, Step):
            raise InvalidInput(
                f"@step decorates a plain function; got {shown(target)}.", field="step"
            )
        label = check_key(name if name is not None else target.__name__, "step")
        return Step(target, name=label, retries=retries, timeout_s=timeout_s, cache=cache)

    return wrap if fn is None else wrap(fn)


def check_options(retries: object, timeout_s: object, cache: object) -> None:
    """The step options, checked once where they are given."""
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise InvalidInput(
            f"retries must be an int from 0 to 100; got {shown(retries)}.", field="retries"
        )
    if timeout_s is not None and (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, (int, float))
        or not math.isfinite(timeout_s)
        or timeout_s <= 0
    ):
        raise InvalidInput(
            f"timeout_s must be a positive number of seconds or None; got {shown(timeout_s)}.",
            field="timeout_s",
        )
    if not isinstance(cache, bool):
        raise InvalidInput(f"cache must be True or False; got {shown(cache)}.", field="cache")


__all__ = ["TRACING", "Step", "check_options", "step"]
