"""The step worker: ``python -m modelpilot.pipeline_worker TASK.json`` runs one step attempt.

Started by :class:`modelpilot.pipelines.executor.SubprocessExecutor`, one fresh process per
attempt. It opens the store and blobs named by the ``MODELPILOT_*`` variables its engine
passed, imports the step by file and qualified name, makes the step's child run the active
run of the SDK (so ``mp.log_metric`` inside the step lands there), runs it, and writes the
result JSON (write-temp-then-rename). Everything it prints is the step's log.

An entry point, like the CLI: it sits above the SDK, which the step's own code calls.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import modelpilot as mp
from modelpilot.errors import ModelpilotError
from modelpilot.pipelines.body import BodyResult, StepServices, run_body
from modelpilot.pipelines.loader import load_step_function
from modelpilot.pipelines.values import from_json, to_json


def _write(path: Path, result: BodyResult) -> None:
    payload: dict[str, Any] = (
        {"output": to_json(result.output)}
        if result.output is not None
        else {"error": result.error, "retryable": result.is_retryable}
    )
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(temp, path)


def main(argv: list[str] | None = None) -> int:
    """Run the task in ``argv[0]``; 0 when the step succeeded, 1 when it failed."""
    args = sys.argv[1:] if argv is None else argv
    task = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result_file = Path(task["result_file"])
    try:
        fn = load_step_function(Path(task["module_file"]), task["qualname"])
    except ModelpilotError as exc:
        print(exc.message, file=sys.stderr)
        _write(result_file, BodyResult(error=exc.message, is_retryable=False))
        return 1
    workspace = mp.init()  # from the environment the engine set
    try:
        with workspace.attached_run(task["run_id"]):
            Path(task["started_file"]).touch()  # the step's timeout_s counts from here
            result = run_body(
                fn,
                task["step"],
                {k: from_json(v) for k, v in task["inputs"].items()},
                dataset_name=task["dataset_name"],
                services=StepServices(workspace.datasets, workspace.registry),
            )
    finally:
        workspace.close()
    _write(result_file, result)
    return 0 if result.output is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
