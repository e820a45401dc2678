"""Trials on Ray (``mp.tune(..., executor="ray")``): one Ray task per trial, ``n_jobs`` at once.

Each task runs exactly what a worker process of the process executor runs
(:func:`modelpilot.tuning.study._worker`, one trial): it opens its own runs (``new_runs()``)
and the study's storage, asks Optuna for the next trial, records it as a child run of the
study's parent run and reports the value. So the child runs, their params, metrics and tags,
and resuming (trials left RUNNING by a dead worker are marked FAIL at the next ``tune``) are
the process executor's. A task per trial, not per share, lets Ray place trials on any node
as CPUs free up; each task samples with its own seed (``seed + 1 + index``) so that
concurrent trials do not draw the same startup parameters.

Tasks are not retried (a retry would be a second child run for the same trial): a worker
that dies fails ``tune`` with Unavailable, and calling it again resumes the study. The train
function travels by reference when it is importable (the tasks get this process's import
path) and by value otherwise (cloudpickle), so a lambda works here where processes refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelpilot.errors import InvalidInput, Unavailable
from modelpilot.ray_cluster import connect, driver_import_path

if TYPE_CHECKING:
    from modelpilot.tuning.study import _Job

OPTION = 'tune(executor="ray")'


def run_on_ray(
    job: _Job,
    remaining: int,
    n_jobs: int,
    *,
    address: str | None,
    worker: Callable[[_Job, int, int], None],
) -> None:
    """Run ``remaining`` trials of ``job`` as Ray tasks, at most ``n_jobs`` at a time."""
    ray = connect(address, option=OPTION)
    task = ray.remote(num_cpus=1, max_retries=0)(worker).options(
        runtime_env={"env_vars": driver_import_path()}
    )
    try:
        job_ref = ray.put(job)
    except (TypeError, AttributeError) as exc:  # cloudpickle could not take the function
        raise InvalidInput(
            f"Cannot send the train function to Ray workers: {exc}. Define it at the top level "
            "of an importable module.",
            field="train_fn",
        ) from exc
    pending: list[Any] = []
    submitted = 0
    try:
        while submitted < remaining or pending:
            while submitted < remaining and len(pending) < max(1, n_jobs):
                pending.append(task.remote(job_ref, 1, 1 + submitted))
                submitted += 1
            done, pending = ray.wait(pending, num_returns=1)
            _result(ray, done[0])
    except BaseException:
        for ref in pending:  # an interrupted or failed tune leaves no trial running
            ray.cancel(ref, force=True)
        raise


def _result(ray: Any, ref: Any) -> None:
    """The task's outcome: its own exception re-raised (as the process executor re-raises a
    worker's), or Unavailable when the worker or its node died."""
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else None
        if cause is None:
            raise
        raise cause from exc
    except ray.exceptions.RayError as exc:
        raise Unavailable(
            f"A tuning worker on Ray died before finishing its trial ({type(exc).__name__}: "
            f"{str(exc)[:300]}); the completed trials are kept in the study: run tune() again "
            "to resume."
        ) from exc


__all__ = ["run_on_ray"]
