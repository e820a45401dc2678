"""Run a pipeline: trace it, record it, then run (or reuse) each step in order.

One pipeline run is a parent tracking run; each step that runs is a child run of it, with
its inputs as params and the tags ``modelpilot.parent_run_id``, ``modelpilot.pipeline_run_id``
and ``modelpilot.step``. Steps run one at a time, each after the steps whose outputs it
consumes. The first step that fails (after its retries) ends the run FAILED; the steps after
it are recorded SKIPPED and never start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from modelpilot.clock import now_ms
from modelpilot.data import DatasetVersion
from modelpilot.data.protocol import DatasetService
from modelpilot.errors import InvalidInput, NotFound, PipelineFailed
from modelpilot.pipelines import records
from modelpilot.pipelines.cache import cache_key, code_hash
from modelpilot.pipelines.entities import PipelineRun, PipelineState, StepRun, StepState
from modelpilot.pipelines.executor import Executor, StepOutcome, StepTask
from modelpilot.pipelines.graph import Constant, Graph, Node, PipelineDef
from modelpilot.pipelines.lease import heartbeat, owner_id
from modelpilot.pipelines.params import bind_params, resolve_params
from modelpilot.pipelines.values import (
    DatasetRef,
    ModelRef,
    StepValue,
    ValueRef,
    check_json,
    from_json,
    input_ref,
    summary,
    to_json,
)
from modelpilot.registry.protocol import RegistryService
from modelpilot.store import Store
from modelpilot.tracking.entities import RunStatus
from modelpilot.tracking.protocol import TrackingService

StepListener = Callable[[StepRun], None]
HEARTBEAT_INTERVAL_S = 10.0  # well inside the agent's default lease of 120 s


@dataclass(frozen=True)
class PipelineServices:
    """The narrow things a pipeline run needs: its records' store and the tracking, dataset
    and registry services (local or remote alike)."""

    store: Store
    tracking: TrackingService
    datasets: DatasetService
    registry: RegistryService


def run_pipeline(
    definition: PipelineDef,
    params: Mapping[str, object],
    *,
    services: PipelineServices,
    executor: Executor,
    target: str,
    experiment: str | None = None,
    on_step: StepListener | None = None,
) -> PipelineRun:
    """Run ``definition`` with ``params``; PipelineFailed (naming the step, its error and its
    log tail) when a step fails, with the run recorded FAILED."""
    resolved = resolve_params(definition, bind_params(definition, params), services.datasets)
    graph = definition.build(resolved)
    for node in graph.nodes:
        executor.check(node.step)
    return _Run(graph, services, executor, experiment or definition.name, on_step).start(
        target, resolved
    )


class _Run:
    """One pipeline run in progress."""

    def __init__(
        self,
        graph: Graph,
        services: PipelineServices,
        executor: Executor,
        experiment: str,
        on_step: StepListener | None,
    ) -> None:
        self.graph = graph
        self.services = services
        self.executor = executor
        self.experiment = experiment
        self.on_step = on_step or (lambda _: None)
        self.owner = owner_id()
        self.outputs: dict[str, StepValue] = {}
        self.parent_id = ""  # the parent tracking run, once start() made it

    def start(self, target: str, params: Mapping[str, object]) -> PipelineRun:
        shown_params = {k: _param_text(v) for k, v in params.items()}
        tracking = self.services.tracking
        parent = tracking.create_run(
            self.experiment,
            name=self.graph.pipeline,
            tags={"modelpilot.pipeline": self.graph.pipeline, "modelpilot.target": target},
        )
        self.parent_id = parent.id
        tracking.log_params(parent.id, {k: _one_line(v) for k, v in shown_params.items()})
        planned = [
            records.PlannedStep(n.name, n.step.name, n.upstream, n.step.retries + 1)
            for n in self.graph.nodes
        ]
        run = records.create_pipeline_run(
            self.services.store,
            pipeline=self.graph.pipeline,
            target=target,
            params=shown_params,
            run_id=parent.id,
            executor=self.executor.name,
            steps=planned,
            owner=self.owner,
        )
        tracking.set_tags(parent.id, {"modelpilot.pipeline_run_id": run.id})
        failed: StepRun | None = None
        try:
            with _heartbeating(self.services.store, run.id, self.owner):
                for node, step_run in zip(self.graph.nodes, run.steps, strict=True):
                    failed = self._node(run.id, node, step_run)
                    if failed is not None:
                        break
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            records.finish_pipeline_run(
                self.services.store, run.id, PipelineState.FAILED, f"{type(exc).__name__}: {exc}"
            )
            tracking.set_status(parent.id, RunStatus.KILLED if interrupted else RunStatus.FAILED)
            raise
        if failed is not None:
            return self._fail(run.id, failed)
        tracking.set_status(parent.id, RunStatus.FINISHED)
        return records.finish_pipeline_run(self.services.store, run.id, PipelineState.SUCCEEDED)

    def _fail(self, run_key: str, failed: StepRun) -> PipelineRun:
        message = (
            f"Pipeline {self.graph.pipeline!r} failed at step {failed.name!r} "
            f"(attempt {failed.attempt}/{failed.max_attempts}): {failed.error}"
        )
        records.finish_pipeline_run(self.services.store, run_key, PipelineState.FAILED, message)
        self.services.tracking.set_status(self.parent_id, RunStatus.FAILED)
        log = (
            f"\n--- log tail of step {failed.name!r} ---\n{failed.log_tail}"
            if failed.log_tail
            else ""
        )
        raise PipelineFailed(
            f"{message} (pipeline run {run_key}; modelpilot pipelines show {run_key[:8]}){log}",
            pipeline_run_id=run_key,
            step=failed.name,
        )

    def _node(self, run_key: str, node: Node, step_run: StepRun) -> StepRun | None:
        """Run or reuse one step; the failed step run, or None."""
        inputs = self._inputs(node)
        code = code_hash(node.step.fn, node.step.name)
        key = cache_key(node.step.name, code, inputs)
        stored_inputs = {k: to_json(v) for k, v in inputs.items()}
        if node.step.cache:
            hit = records.find_cached(self.services.store, key)
            if hit is not None and hit.output is not None and self._still_there(hit.output):
                stamp = now_ms()
                done = records.update_step(
                    self.services.store, step_run.id, [StepState.PENDING],
                    state=StepState.CACHED, code_hash=code, cache_key=key, inputs=stored_inputs,
                    output=hit.output, cached_from=hit.id, started_ms=stamp, ended_ms=stamp,
                    owner=self.owner,
                )  # fmt: skip
                self.outputs[node.name] = from_json(hit.output)
                self.on_step(done)
                return None
        child = self._child_run(run_key, node, inputs, key)
        running = records.update_step(
            self.services.store, step_run.id, [StepState.PENDING],
            state=StepState.RUNNING, attempt=1, run_id=child, code_hash=code, cache_key=key,
            inputs=stored_inputs, started_ms=now_ms(), owner=self.owner,
        )  # fmt: skip
        self.on_step(running)
        return self._attempts(node, running, inputs, child)

    def _attempts(
        self, node: Node, running: StepRun, inputs: Mapping[str, StepValue], child: str
    ) -> StepRun | None:
        outcome: StepOutcome | None = None
        for attempt in range(1, running.max_attempts + 1):
            if attempt > 1:
                running = records.update_step(
                    self.services.store, running.id, [StepState.RUNNING], attempt=attempt,
                    error=outcome.error if outcome else None,
                )  # fmt: skip
                self.on_step(running)
            task = StepTask(
                node.name, node.step, child, inputs,
                f"{self.graph.pipeline}.{node.name}", attempt,
            )  # fmt: skip
            outcome = self.executor.run(task)
            if outcome.output is not None or not outcome.is_retryable:
                break
        assert outcome is not None  # max_attempts >= 1
        tracking = self.services.tracking
        if outcome.output is not None:
            self.outputs[node.name] = outcome.output
            tracking.set_tags(child, {"modelpilot.output": _one_line(summary(outcome.output))})
            tracking.set_status(child, RunStatus.FINISHED)
            done = records.update_step(
                self.services.store, running.id, [StepState.RUNNING], state=StepState.SUCCEEDED,
                output=to_json(outcome.output), log_tail=outcome.log_tail, ended_ms=now_ms(),
            )  # fmt: skip
            self.on_step(done)
            return None
        tracking.set_status(child, RunStatus.FAILED)
        failed = records.update_step(
            self.services.store, running.id, [StepState.RUNNING], state=StepState.FAILED,
            error=outcome.error, log_tail=outcome.log_tail, ended_ms=now_ms(),
        )  # fmt: skip
        self.on_step(failed)
        return failed

    def _inputs(self, node: Node) -> dict[str, StepValue]:
        inputs: dict[str, StepValue] = {}
        for key, arg in node.args.items():
            if isinstance(arg, Constant):
                inputs[key] = input_ref(
                    arg.value,
                    f"step {node.name!r} argument {key!r}",
                    datasets=self.services.datasets,
                    frame_name=f"{self.graph.pipeline}.{node.name}.{key}",
                )
            else:
                inputs[key] = self.outputs[arg.node]
        return inputs

    def _child_run(
        self, run_key: str, node: Node, inputs: Mapping[str, StepValue], key: str
    ) -> str:
        """The step's child run: inputs as params, consumed datasets and models as lineage."""
        tracking = self.services.tracking
        models = sorted(f"{r.name}/{r.version}" for r in inputs.values() if isinstance(r, ModelRef))
        tags = {
            "modelpilot.parent_run_id": self.parent_id,
            "modelpilot.pipeline": self.graph.pipeline,
            "modelpilot.pipeline_run_id": run_key,
            "modelpilot.step": node.name,
            "modelpilot.cache_key": key,
            **({"modelpilot.input_models": ", ".join(models)} if models else {}),
        }
        child = tracking.create_run(
            self.experiment,
            name=f"{self.graph.pipeline}.{node.name}",
            parent_run_id=self.parent_id,
            tags=tags,
        )
        if inputs:
            tracking.log_params(child.id, {k: _one_line(summary(v)) for k, v in inputs.items()})
        for ref in inputs.values():
            if isinstance(ref, DatasetRef):
                self.services.datasets.record_input(child.id, ref.name, ref.digest, "input")
        return child.id

    def _still_there(self, output: Mapping[str, object]) -> bool:
        """A cached output is reused only while what it points at still exists."""
        ref = from_json(output)
        try:
            if isinstance(ref, DatasetRef):
                self.services.datasets.get_dataset(f"{ref.name}@{ref.digest}")
            elif isinstance(ref, ModelRef):
                version = self.services.registry.get_version(f"{ref.name}/{ref.version}")
                return version.package_digest == ref.digest
        except NotFound:
            return False
        return True


@contextmanager
def _heartbeating(store: Store, run_key: str, owner: str) -> Iterator[None]:
    """Renew the run's lease every HEARTBEAT_INTERVAL_S from a daemon thread while the block
    runs, so an agent tells a long step from a dead owner; stops when the lease is lost."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_INTERVAL_S):
            try:
                if not heartbeat(store, run_key, owner, now_ms()):
                    return  # reclaimed: the run's end will be refused as a Conflict
            except Exception:  # a store hiccup: try again next interval
                continue

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_key[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _param_text(value: object) -> object:
    """A pipeline parameter as stored on the pipeline run: JSON as is, others as text."""
    if isinstance(value, DatasetVersion):
        return f"dataset {value.ref}"
    if isinstance(value, pd.DataFrame):
        return f"DataFrame ({len(value)} rows)"
    try:
        return check_json(value, "param")
    except InvalidInput:
        return str(value)


def _one_line(value: object) -> str:
    """A run param's text: one line, bounded."""
    text = value if isinstance(value, str) else summary(ValueRef(value))
    return text.replace("\n", " ")[:500]


__all__ = ["PipelineServices", "StepListener", "run_pipeline"]
