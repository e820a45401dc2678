"""Where a step attempt runs: the :class:`Executor` seam and its two implementations.

- :class:`SubprocessExecutor` (the default): a fresh Python process per attempt,
  ``python -m modelpilot.pipeline_worker TASK.json``. The worker imports the step by file
  and qualified name, runs it with the child run active, and writes its result as JSON. Its
  stdout and stderr are the step's log. ``timeout_s`` counts from when the worker calls the
  step function; past it the worker's whole process group is killed.
- :class:`InlineExecutor` (``--executor inline``): the calling process, for debugging with
  breakpoints. It cannot enforce ``timeout_s``.

The Ray executor (``--executor ray``, :mod:`modelpilot.pipelines.ray_executor`) implements
the same two methods and runs the same worker code (``modelpilot.pipeline_worker``'s
``step_attempt`` on :func:`worker_task`) as a Ray task.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelpilot.config import Settings
from modelpilot.errors import InvalidInput, shown
from modelpilot.pipelines.body import StepServices, run_body
from modelpilot.pipelines.loader import step_location
from modelpilot.pipelines.step import Step
from modelpilot.pipelines.values import StepValue, from_json, to_json

LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 4000
_WORKER_MODULE = "modelpilot.pipeline_worker"
_POLL_S = 0.05
# How long a worker may take to import the step and open the store before its timeout_s
# starts counting; past this it is killed as timed out too.
START_LIMIT_S = 300.0
# The folder that holds the modelpilot package: the worker must import this same code.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StepTask:
    """One attempt of one step: what to call, on what, logging to which child run."""

    node: str
    step: Step
    run_id: str
    inputs: Mapping[str, StepValue]
    dataset_name: str  # the name a returned DataFrame is logged under
    attempt: int


@dataclass(frozen=True)
class StepOutcome:
    """How an attempt ended: an output, or an error with the end of the step's log."""

    output: StepValue | None
    error: str | None
    log_tail: str
    is_retryable: bool = True
    timed_out: bool = False


class Executor(Protocol):
    """Runs step attempts somewhere; the engine does the records, caching and retries."""

    name: str

    def check(self, step: Step) -> None:
        """Refuse, before the run starts, a step this executor cannot run."""

    def run(self, task: StepTask) -> StepOutcome:
        """Run one attempt to its end (or its timeout) and say how it went."""


def tail(text: str) -> str:
    """The last lines of a log, bounded in lines and characters.

    >>> tail("\\n".join(str(i) for i in range(100))).splitlines()[0]
    '60'
    """
    lines = text.rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
    joined = "\n".join(lines)
    return joined[-LOG_TAIL_CHARS:]


def worker_environment(settings: Settings) -> dict[str, str]:
    """The ``MODELPILOT_*`` variables that make a worker open the same store and blobs."""
    env = {
        "MODELPILOT_HOME": str(settings.home),
        "MODELPILOT_STORE_URI": settings.resolved_store_uri(),
        "MODELPILOT_ARTIFACT_ROOT": str(settings.resolved_artifact_root()),
    }
    if settings.artifacts_uri:
        env["MODELPILOT_ARTIFACTS_URI"] = settings.artifacts_uri
    return env


def worker_process_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus what a step worker's interpreter needs: unbuffered output (a killed step
    keeps its log) and this modelpilot package first on its path."""
    path = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


def worker_task(task: StepTask) -> dict[str, Any]:
    """The JSON task a step worker runs (``modelpilot.pipeline_worker.step_attempt``): the
    step by file and qualified name, its child run, its inputs as references."""
    path, qualname = step_location(task.step)
    return {
        "module_file": str(path),
        "qualname": qualname,
        "step": task.node,
        "run_id": task.run_id,
        "inputs": {k: to_json(v) for k, v in task.inputs.items()},
        "dataset_name": task.dataset_name,
    }


def outcome_of(result: Mapping[str, Any], log: str) -> StepOutcome:
    """The outcome of a worker's result payload (``{"output": ...}`` or ``{"error": ...}``)."""
    if result.get("output") is not None:
        return StepOutcome(from_json(result["output"]), None, log)
    return StepOutcome(
        None, str(result.get("error")), log, is_retryable=bool(result.get("retryable", True))
    )


def timed_out_outcome(task: StepTask, log: str) -> StepOutcome:
    """The outcome of an attempt killed at its ``timeout_s``."""
    limit = task.step.timeout_s or 0.0
    return StepOutcome(
        None,
        f"Step {task.node!r} timed out after {limit:g} s (timeout_s={limit:g}); its process "
        "was killed.",
        log,
        timed_out=True,
    )


class SubprocessExecutor:
    """A fresh ``python -m modelpilot.pipeline_worker`` process per attempt."""

    name = "subprocess"

    def __init__(self, *, env: Mapping[str, str], python: str = sys.executable) -> None:
        self.env = env
        self.python = python

    def check(self, step: Step) -> None:
        """The step must be importable by file and name."""
        step_location(step)

    def run(self, task: StepTask) -> StepOutcome:
        """Write the task, start the worker, wait (killing it at the timeout), read back."""
        with tempfile.TemporaryDirectory(prefix="modelpilot-step-") as tmp:
            folder = Path(tmp)
            task_file, result_file, log_file = (folder / n for n in ("task.json", "r.json", "log"))
            task_file.write_text(
                json.dumps(
                    {
                        **worker_task(task),
                        "result_file": str(result_file),
                        "started_file": str(folder / "started"),
                        "parent_pid": os.getpid(),  # the worker dies with this process
                    }
                )
            )
            code, timed_out = self._wait(task, task_file, log_file)
            log = tail(log_file.read_text(encoding="utf-8", errors="replace"))
            if timed_out:
                return timed_out_outcome(task, log)
            if not result_file.is_file():
                return StepOutcome(
                    None, f"The step worker exited with code {code} before writing a result.", log
                )
            result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
        return outcome_of(result, log)

    def _wait(self, task: StepTask, task_file: Path, log_file: Path) -> tuple[int, bool]:
        env = {**os.environ, **worker_process_environment(self.env)}
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [self.python, "-m", _WORKER_MODULE, str(task_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills its children too
            )
            try:
                if task.step.timeout_s is None:
                    return process.wait(), False
                return self._wait_timed(
                    process, task_file.with_name("started"), task.step.timeout_s
                )
            except BaseException:  # an interrupted engine leaves no worker behind
                _kill(process)
                raise

    @staticmethod
    def _wait_timed(
        process: subprocess.Popen[bytes], started: Path, limit_s: float
    ) -> tuple[int, bool]:
        """Wait for the worker; the step's ``timeout_s`` counts from when the worker starts the
        step's function (the ``started`` file), not from the interpreter's own start."""
        launched = time.monotonic()
        began: float | None = None
        while True:
            try:
                return process.wait(timeout=_POLL_S), False
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if began is None and started.exists():
                began = now
            late = now - began > limit_s if began is not None else now - launched > START_LIMIT_S
            if late:
                _kill(process)
                return process.returncode, True


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class InlineExecutor:
    """Steps run in the calling process (for debugging); ``timeout_s`` is not enforced."""

    name = "inline"

    def __init__(
        self,
        *,
        services: StepServices,
        attach: Callable[[str], AbstractContextManager[object]],
    ) -> None:
        self.services = services
        self.attach = attach

    def check(self, step: Step) -> None:
        """Any callable runs in-process."""

    def run(self, task: StepTask) -> StepOutcome:
        """Call the step with its child run attached; its prints are its log."""
        buffer = io.StringIO()
        started = time.monotonic()
        with (
            self.attach(task.run_id),
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(buffer),
        ):
            result = run_body(
                task.step.fn,
                task.node,
                task.inputs,
                dataset_name=task.dataset_name,
                services=self.services,
            )
        limit = task.step.timeout_s
        if limit is not None and time.monotonic() - started > limit:
            buffer.write(f"(inline executor: ran past timeout_s={limit:g}; not enforced inline)\n")
        return StepOutcome(
            result.output, result.error, tail(buffer.getvalue()), result.is_retryable
        )


EXECUTOR_NAMES = ("subprocess", "inline", "ray")


def check_executor_name(name: str) -> str:
    """One of :data:`EXECUTOR_NAMES`."""
    if name not in EXECUTOR_NAMES:
        raise InvalidInput(
            f"Unknown executor {shown(name)}: expected one of {', '.join(EXECUTOR_NAMES)}.",
            field="executor",
        )
    return name


__all__ = [
    "EXECUTOR_NAMES",
    "Executor",
    "InlineExecutor",
    "StepOutcome",
    "StepTask",
    "SubprocessExecutor",
    "check_executor_name",
    "outcome_of",
    "tail",
    "timed_out_outcome",
    "worker_environment",
    "worker_process_environment",
    "worker_task",
]
