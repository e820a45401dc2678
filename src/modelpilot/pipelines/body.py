"""Run one step's function on its inputs and turn its return value into a stored reference.

This is the part that runs where the step runs: in a step worker process (the subprocess
executor) or in the calling process (the inline executor). Whoever calls it has already
made the step's child run the active run, so ``mp.log_metric`` inside the step lands there.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelpilot.data.protocol import DatasetService
from modelpilot.errors import ModelpilotError
from modelpilot.pipelines.values import StepValue, materialize, output_ref, parameter_hints
from modelpilot.registry.protocol import RegistryService


@dataclass(frozen=True)
class StepServices:
    """What a step's inputs and output are read and written through."""

    datasets: DatasetService
    registry: RegistryService


@dataclass(frozen=True)
class BodyResult:
    """The output reference, or the error (``is_retryable`` False for the framework's own
    checks, such as a wrong return type, which another attempt cannot fix)."""

    output: StepValue | None = None
    error: str | None = None
    is_retryable: bool = True


def run_body(
    fn: Callable[..., Any],
    step: str,
    inputs: Mapping[str, StepValue],
    *,
    dataset_name: str,
    services: StepServices,
) -> BodyResult:
    """Call ``fn`` with its inputs; the traceback of a failure goes to stderr (the step log)."""
    try:
        hints = parameter_hints(fn)
        kwargs = {
            key: materialize(
                ref, hints.get(key), datasets=services.datasets, registry=services.registry
            )
            for key, ref in inputs.items()
        }
    except ModelpilotError as exc:
        return BodyResult(error=f"Reading the inputs of step {step!r}: {exc.message}")
    try:
        value = fn(**kwargs)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return BodyResult(error=f"{type(exc).__name__}: {exc}")
    try:
        return BodyResult(
            output=output_ref(value, step, datasets=services.datasets, dataset_name=dataset_name)
        )
    except ModelpilotError as exc:
        return BodyResult(error=exc.message, is_retryable=False)


__all__ = ["BodyResult", "StepServices", "run_body"]
