"""The Ray executor (``--executor ray``): each step attempt is a Ray task.

The task runs the same worker code as the subprocess executor
(``modelpilot.pipeline_worker.step_attempt`` on :func:`~modelpilot.pipelines.executor.worker_task`),
in a Ray worker process whose environment (a Ray ``runtime_env``) holds the engine's
``MODELPILOT_*`` settings, so it records to the same store and blobs. The engine (records,
cache, retries) stays in the calling process; Ray's own retries are off.

The task is a streaming generator: it yields once when the step's function is about to be
called (``timeout_s`` counts from there, as in the subprocess worker) and then the result
with the step's log. Past ``timeout_s`` the task is cancelled with ``ray.cancel(force=True)``,
which kills its worker process. The step's stdout and stderr (file descriptors 1 and 2) are
its log; they go to a file in a folder the engine made, so a killed step's log can still be
read when the task ran on the engine's machine.

Connecting is :func:`modelpilot.ray_cluster.connect`'s: the Ray of this process, the cluster
at ``--ray-address`` (``MODELPILOT_RAY_ADDRESS``), or a local one.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.pipelines.executor import (
    START_LIMIT_S,
    StepOutcome,
    StepTask,
    outcome_of,
    tail,
    timed_out_outcome,
    worker_process_environment,
    worker_task,
)
from modelpilot.pipelines.loader import step_location
from modelpilot.pipelines.step import Step
from modelpilot.ray_cluster import (
    connect,
    import_ray,
    ray_missing,
    refuse_unshared_state,
)

RAY_MISSING = ray_missing("--executor ray")
_WORKER_MODULE = "modelpilot.pipeline_worker"  # imported by name in the task: an entry point
_STARTED = "started"


class RayExecutor:
    """Step attempts as Ray tasks, on a cluster at ``address`` or a local one."""

    name = "ray"

    def __init__(
        self, *, env: Mapping[str, str], address: str | None = None, num_cpus: int = 2
    ) -> None:
        self.env = env
        self.address = address
        self.num_cpus = num_cpus

    def check(self, step: Step) -> None:
        """The step must be importable by file and name, and Ray reachable."""
        step_location(step)
        self._connect()

    def run(self, task: StepTask) -> StepOutcome:
        """Submit the attempt as a Ray task, wait (cancelling it at the timeout), read back."""
        ray = self._connect()
        with tempfile.TemporaryDirectory(prefix="modelpilot-ray-step-") as tmp:
            log_file = Path(tmp) / "log"
            events = (
                _remote(ray)
                .options(runtime_env={"env_vars": worker_process_environment(self.env)})
                .remote({**worker_task(task), "log_file": str(log_file)})
            )
            try:
                return self._wait(ray, events, task, log_file)
            except BaseException:  # an interrupted engine leaves no task behind
                ray.cancel(events, force=True)
                raise

    def _wait(self, ray: Any, events: Any, task: StepTask, log_file: Path) -> StepOutcome:
        limit_s = task.step.timeout_s
        deadline = None if limit_s is None else time.monotonic() + START_LIMIT_S
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _ = ray.wait([events], timeout=left)
            if not ready:
                ray.cancel(events, force=True)
                return timed_out_outcome(task, _read_tail(log_file))
            try:
                event = ray.get(next(events))
            except (StopIteration, ray.exceptions.RayError) as exc:
                return StepOutcome(
                    None,
                    f"The Ray task of step {task.node!r} ended before writing a result "
                    f"({type(exc).__name__}: {str(exc)[:300]}).",
                    _read_tail(log_file),
                )
            if event == _STARTED:
                if limit_s is not None:
                    deadline = time.monotonic() + limit_s
                continue
            return outcome_of(event["result"], tail(event["log"]))

    def _connect(self) -> Any:
        return connect(self.address, num_cpus=self.num_cpus)


@functools.cache
def _remote(ray: ModuleType) -> Any:
    """The Ray remote function of :func:`_step_task`, made once per process."""
    return ray.remote(num_returns="streaming", max_retries=0)(_step_task)


def _read_tail(log_file: Path) -> str:
    """The log of a task that gave none back: its file, when it ran on this machine."""
    if log_file.is_file():
        return tail(log_file.read_text(encoding="utf-8", errors="replace"))
    return "(no log here: the task ran on another machine; see its Ray worker's logs)"


def _step_task(task: dict[str, Any]) -> Iterator[Any]:
    """In the Ray worker: run the attempt, its output going to the log; yield ``started``,
    then the result payload and the log."""
    worker = importlib.import_module(_WORKER_MODULE)
    log_file = Path(task["log_file"])
    if not log_file.parent.is_dir():  # another machine than the engine's
        log_file = Path(tempfile.mkdtemp(prefix="modelpilot-ray-step-")) / "log"
    try:  # on another machine than the engine's, the store and blobs must be shared ones
        refuse_unshared_state(Settings())
    except InvalidInput as exc:
        yield {"result": {"error": exc.message, "retryable": False}, "log": ""}
        return
    result: dict[str, Any] = {}
    with _output_to(log_file):
        for event in worker.step_attempt(task):
            if event is worker.STARTED:
                yield _STARTED
            else:
                result = event
    yield {"result": result, "log": log_file.read_text(encoding="utf-8", errors="replace")}


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (and so ``print``, tracebacks and child processes) go to
    ``path`` while the block runs. A Ray worker runs one task at a time, so this is safe."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


__all__ = ["RAY_MISSING", "RayExecutor", "import_ray"]
