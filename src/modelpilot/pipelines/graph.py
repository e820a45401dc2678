"""Pipelines and their graphs: which step runs on whose output.

Two ways to write a pipeline, one graph:

- ``@pipeline`` on a function that calls steps. The function is *traced*: it runs once, in
  the calling process, with the real parameter values; each step call records a node and
  returns a lazy :class:`StepHandle`, which can only be passed to later steps. A handle
  exists only after its step was called, so the graph is acyclic by construction and its
  nodes are already in an order that runs every step after its inputs.
- ``Pipeline(name, step_a, step_b, ...)``. A step's parameter named after another step
  takes that step's output; every other parameter is a pipeline parameter. The order is
  found by a topological sort, and a cycle is an error naming it.

>>> from modelpilot.pipelines.step import step
>>> @step
... def a(x: int) -> int:
...     return x
>>> @step
... def b(a: int) -> int:
...     return a
>>> [n.name for n in Pipeline("p", b, a).build({"x": 1}).nodes]
['a', 'b']
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelpilot.errors import InvalidInput, shown
from modelpilot.pipelines.step import TRACING, Step
from modelpilot.pipelines.values import check_constant

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


@dataclass(frozen=True)
class Upstream:
    """An argument that is the output of the node called ``node``."""

    node: str


@dataclass(frozen=True)
class Constant:
    """An argument known before the run: a pipeline parameter or a literal."""

    value: object


Arg = Upstream | Constant


@dataclass(frozen=True)
class Node:
    """One step call in a pipeline; ``name`` is unique in its graph (``train``, ``train-2``)."""

    name: str
    step: Step
    args: Mapping[str, Arg]

    @property
    def upstream(self) -> tuple[str, ...]:
        """The nodes whose outputs this one consumes."""
        return tuple(a.node for a in self.args.values() if isinstance(a, Upstream))


@dataclass(frozen=True)
class Graph:
    """A pipeline's nodes, each after the nodes it consumes."""

    pipeline: str
    nodes: tuple[Node, ...]
    params: Mapping[str, object] = field(default_factory=dict)


class StepHandle:
    """The future output of a step call, while its pipeline is being traced."""

    __slots__ = ("_node", "_tracer")

    def __init__(self, tracer: Tracer, node: str) -> None:
        self._tracer = tracer
        self._node = node

    @property
    def node(self) -> str:
        """The node whose output this stands for."""
        return self._node

    def _refuse(self, *_: object, **__: object) -> Any:
        raise InvalidInput(
            f"The output of step {self._node!r} is not known while pipeline "
            f"{self._tracer.pipeline!r} is being traced: pass it to another step "
            "(train(data)) instead of using it in the pipeline function; do work on it inside "
            "a step.",
            field=self._node,
        )

    __bool__ = __iter__ = __len__ = __getitem__ = __add__ = __eq__ = __lt__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probe for optional hooks
            raise AttributeError(name)
        return self._refuse()

    def __repr__(self) -> str:
        return f"StepHandle({self._node!r})"


class Tracer:
    """Records the step calls of one pipeline function call."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.nodes: list[Node] = []

    def add(self, step: Step, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> StepHandle:
        """Record a call of ``step``; its output is a handle for later steps."""
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(
                f"Step {step.name!r} in pipeline {self.pipeline!r} was called with arguments "
                f"it does not take ({exc}); it takes {step.name}{step.signature}.",
                field=step.name,
            ) from exc
        bound.apply_defaults()
        taken = {n.name for n in self.nodes}
        name, count = step.name, 1
        while name in taken:
            count += 1
            name = f"{step.name}-{count}"
        node_args = {key: self._arg(name, key, value) for key, value in bound.arguments.items()}
        self.nodes.append(Node(name, step, node_args))
        return StepHandle(self, name)

    def _arg(self, node: str, key: str, value: object) -> Arg:
        where = f"step {node!r} argument {key!r}"
        if isinstance(value, StepHandle):
            if value._tracer is not self:
                raise InvalidInput(
                    f"{where}: the output of step {value.node!r} comes from another pipeline "
                    "call; steps can only consume outputs of the same pipeline run.",
                    field=key,
                )
            return Upstream(value.node)
        if _holds_handle(value):
            raise InvalidInput(
                f"{where}: a step's output inside a list or dict cannot be resolved; pass "
                "each step output as its own argument.",
                field=key,
            )
        check_constant(value, where)
        return Constant(value)


def _holds_handle(value: object, depth: int = 0) -> bool:
    if depth > 8:
        return False
    if isinstance(value, StepHandle):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_handle(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return any(_holds_handle(v, depth + 1) for v in value.values())
    return False


def check_pipeline_name(name: object) -> str:
    """A pipeline name: letters, digits, '_', '-', '.'; 1-128 characters."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"Invalid pipeline name {shown(name)}: expected 1-128 letters, digits, '_', '-' or "
            "'.', starting with a letter or digit.",
            field="name",
        )
    return name


class PipelineFunction:
    """A function that calls steps (``@mp.pipeline``); traced to build its graph."""

    def __init__(self, fn: Callable[..., Any], *, name: str) -> None:
        self.fn = fn
        self.name = name

    @property
    def signature(self) -> inspect.Signature:
        """The pipeline's parameters: the function's."""
        return inspect.signature(self.fn)

    @property
    def hints_source(self) -> Callable[..., Any]:
        """The function whose annotations type the parameters."""
        return self.fn

    @property
    def source_file(self) -> Path | None:
        """The file the pipeline was defined in, when known."""
        found = inspect.getsourcefile(self.fn)
        return Path(found) if found else None

    def build(self, params: Mapping[str, object]) -> Graph:
        """Trace the function with ``params``: one node per step call."""
        tracer = Tracer(self.name)
        token = TRACING.set(tracer)
        try:
            self.fn(**params)
        finally:
            TRACING.reset(token)
        if not tracer.nodes:
            raise InvalidInput(
                f"Pipeline {self.name!r} called no steps: call functions decorated with "
                "@mp.step inside it.",
                field="pipeline",
            )
        return Graph(self.name, tuple(tracer.nodes), dict(params))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise InvalidInput(
            f"Pipeline {self.name!r} is not called directly: run it with "
            f"mp.run_pipeline({self.fn.__name__}, params={{...}}) or `modelpilot pipelines run "
            f"file.py:{self.fn.__name__} --param key=value`.",
            field="pipeline",
        )

    def __repr__(self) -> str:
        return f"PipelineFunction({self.name!r})"


class Pipeline:
    """Steps wired by name: a parameter named after another step takes its output.

    >>> Pipeline("p")
    Pipeline('p', steps=[])
    """

    def __init__(self, name: str, *steps: Step) -> None:
        self.name = name
        self.steps = steps

    def validate(self) -> Pipeline:
        """Check the name, that every part is a step, and that step names are unique."""
        check_pipeline_name(self.name)
        names: set[str] = set()
        for part in self.steps:
            if not isinstance(part, Step):
                raise InvalidInput(
                    f"Pipeline {self.name!r}: {shown(part)} is not a step; decorate the "
                    "function with @mp.step.",
                    field="steps",
                )
            if part.name in names:
                raise InvalidInput(
                    f"Pipeline {self.name!r} has two steps named {part.name!r}; give one "
                    "another name with @mp.step(name=...).",
                    field="steps",
                )
            names.add(part.name)
        return self

    @property
    def signature(self) -> inspect.Signature:
        """Every step parameter not named after a step (the first default seen wins)."""
        names = {s.name for s in self.steps}
        params: dict[str, inspect.Parameter] = {}
        for part in self.steps:
            for p in part.signature.parameters.values():
                if p.name not in names and p.name not in params:
                    params[p.name] = p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        ordered = sorted(params.values(), key=lambda p: p.default is not inspect.Parameter.empty)
        return inspect.Signature(ordered)

    @property
    def hints_source(self) -> Sequence[Callable[..., Any]]:
        """The step functions whose annotations type the parameters."""
        return [s.fn for s in self.steps]

    @property
    def source_file(self) -> Path | None:
        """The file of the first step, when known."""
        found = inspect.getsourcefile(self.steps[0].fn) if self.steps else None
        return Path(found) if found else None

    def build(self, params: Mapping[str, object]) -> Graph:
        """The nodes in an order that runs each after its inputs; a cycle is an error."""
        self.validate()
        if not self.steps:
            raise InvalidInput(f"Pipeline {self.name!r} has no steps.", field="steps")
        by_name = {s.name: s for s in self.steps}
        nodes: dict[str, Node] = {}
        for part in self.steps:
            args: dict[str, Arg] = {}
            for key, p in part.signature.parameters.items():
                if key in by_name:
                    args[key] = Upstream(key)
                elif key in params:
                    args[key] = Constant(params[key])
                elif p.default is not inspect.Parameter.empty:
                    args[key] = Constant(p.default)
                else:
                    raise InvalidInput(
                        f"Pipeline {self.name!r}: step {part.name!r} needs {key!r}, which is "
                        "neither a step name nor a given parameter.",
                        field=key,
                    )
            nodes[part.name] = Node(part.name, part, args)
        return Graph(self.name, tuple(nodes[n] for n in _topological(self.name, nodes)), params)

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={[s.name for s in self.steps]})"


def _topological(pipeline: str, nodes: Mapping[str, Node]) -> list[str]:
    """Depth-first order; a node met again while on the path closes a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise InvalidInput(
                f"Pipeline {pipeline!r} has a cycle: {' -> '.join(cycle)}. A step parameter "
                "named after another step takes that step's output; rename the parameter to "
                "break the cycle.",
                field="steps",
            )
        state[name] = 1
        path.append(name)
        for upstream in nodes[name].upstream:
            visit(upstream)
        path.pop()
        state[name] = 2
        order.append(name)

    for name in nodes:
        visit(name)
    return order


PipelineDef = PipelineFunction | Pipeline


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> PipelineFunction | Callable[[Callable[..., Any]], PipelineFunction]:
    """Make a function that calls steps a pipeline: ``@pipeline`` or ``@pipeline(name=...)``."""

    def wrap(target: Callable[..., Any]) -> PipelineFunction:
        if not callable(target) or isinstance(target, (Step, PipelineFunction)):
            raise InvalidInput(
                f"@pipeline decorates a plain function; got {shown(target)}.", field="pipeline"
            )
        label = check_pipeline_name(name if name is not None else target.__name__)
        return PipelineFunction(target, name=label)

    return wrap if fn is None else wrap(fn)


def describe_target(definition: PipelineDef) -> str:
    """``FILE:NAME`` for a pipeline object, as the run records show where it came from."""
    where = definition.source_file
    attr = definition.fn.__name__ if isinstance(definition, PipelineFunction) else definition.name
    return f"{where}:{attr}" if where is not None else attr


__all__ = [
    "Arg",
    "Constant",
    "Graph",
    "Node",
    "Pipeline",
    "PipelineDef",
    "PipelineFunction",
    "StepHandle",
    "Tracer",
    "Upstream",
    "check_pipeline_name",
    "describe_target",
    "pipeline",
]
