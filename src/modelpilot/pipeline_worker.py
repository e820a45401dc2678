"""The step worker: ``python -m modelpilot.pipeline_worker TASK.json`` runs one step attempt.

Started by :class:`modelpilot.pipelines.executor.SubprocessExecutor`, one fresh process per
attempt; :func:`step_attempt` is also what the Ray executor's task runs. It opens the store
and blobs named by the ``MODELPILOT_*`` variables its engine passed, imports the step by file
and qualified name, makes the step's child run the active run of the SDK (so
``mp.log_metric`` inside the step lands there), runs it, and writes the result JSON
(write-temp-then-rename). Everything it prints is the step's log.

The worker runs in its own process group (so a step timeout kills the step's children too),
which also means it outlives an engine that is SIGKILLed. It therefore watches the engine
(``parent_pid`` in the task): once its parent is gone, it kills its own process group, so
an abandoned step never goes on to register a version for a pipeline run an agent has
reclaimed meanwhile.

An entry point, like the CLI: it sits above the SDK, which the step's own code calls.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import modelpilot as mp
from modelpilot.errors import ModelpilotError
from modelpilot.pipelines.body import BodyResult, StepServices, run_body
from modelpilot.pipelines.loader import load_step_function
from modelpilot.pipelines.values import from_json, to_json


def _payload(result: BodyResult) -> dict[str, Any]:
    if result.output is not None:
        return {"output": to_json(result.output)}
    return {"error": result.error, "retryable": result.is_retryable}


def _write(path: Path, payload: Mapping[str, Any]) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(temp, path)


_PARENT_POLL_S = 0.2  # how soon a worker notices that its engine died


def _die_with_parent(parent_pid: int) -> None:
    """From a daemon thread: once this process's parent is no longer ``parent_pid`` (the
    engine died and the worker was re-parented), SIGKILL the worker's process group (only
    itself when it does not lead one)."""

    def watch() -> None:
        tick = threading.Event()  # never set: a wait that a signal cannot cut short
        while os.getppid() == parent_pid:
            tick.wait(_PARENT_POLL_S)
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


STARTED = None  # what :func:`step_attempt` yields when the step's function is about to run


def step_attempt(task: Mapping[str, Any]) -> Iterator[dict[str, Any] | None]:
    """Run one attempt of the step ``task`` describes; the work of every step worker.

    Yields :data:`STARTED` once the store is open and the child run attached (a step's
    ``timeout_s`` counts from there), then the result payload: ``{"output": ...}`` or
    ``{"error": ..., "retryable": ...}``. The store and blobs come from the ``MODELPILOT_*``
    environment the executor gave this process. Used by ``main`` (the subprocess executor)
    and by the Ray executor's task alike.
    """
    try:
        fn = load_step_function(Path(task["module_file"]), task["qualname"])
    except ModelpilotError as exc:
        print(exc.message, file=sys.stderr)
        yield _payload(BodyResult(error=exc.message, is_retryable=False))
        return
    workspace = mp.init()  # from the environment the engine set
    try:
        with workspace.attached_run(task["run_id"]):
            yield STARTED
            result = run_body(
                fn,
                task["step"],
                {k: from_json(v) for k, v in task["inputs"].items()},
                dataset_name=task["dataset_name"],
                services=StepServices(workspace.datasets, workspace.registry),
            )
    finally:
        workspace.close()
    yield _payload(result)


def main(argv: list[str] | None = None) -> int:
    """Run the task in ``argv[0]``; 0 when the step succeeded, 1 when it failed."""
    args = sys.argv[1:] if argv is None else argv
    task = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    if task.get("parent_pid") is not None:
        _die_with_parent(int(task["parent_pid"]))
    payload: dict[str, Any] = {}
    for event in step_attempt(task):
        if event is STARTED:
            Path(task["started_file"]).touch()  # the step's timeout_s counts from here
        else:
            payload = event
    _write(Path(task["result_file"]), payload)
    return 0 if "output" in payload else 1


if __name__ == "__main__":
    raise SystemExit(main())
