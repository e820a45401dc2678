"""What the pipeline records hold: pipeline runs, step runs and their states."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from modelpilot.errors import NotFound


class PipelineState(StrEnum):
    """RUNNING -> SUCCEEDED or FAILED."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class StepState(StrEnum):
    """PENDING -> RUNNING -> SUCCEEDED | FAILED; or PENDING -> CACHED (output reused) |
    SKIPPED (an earlier step failed, so this one never ran)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    CACHED = "CACHED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


FINAL_STEP_STATES = frozenset(
    {StepState.SUCCEEDED, StepState.CACHED, StepState.FAILED, StepState.SKIPPED}
)


@dataclass(frozen=True)
class StepRun:
    """One step of one pipeline run: its state, attempts, cache key, inputs and output."""

    id: str
    pipeline_run_id: str
    name: str
    step: str
    position: int
    state: StepState
    attempt: int
    max_attempts: int
    upstream: tuple[str, ...]
    code_hash: str | None
    cache_key: str | None
    inputs: dict[str, Any] | None
    output: dict[str, Any] | None
    run_id: str | None
    cached_from: str | None
    error: str | None
    log_tail: str | None
    started_ms: int | None
    ended_ms: int | None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, when both are known."""
        if self.started_ms is None or self.ended_ms is None:
            return None
        return (self.ended_ms - self.started_ms) / 1000

    @property
    def is_cached(self) -> bool:
        """True when the output was reused from an earlier run."""
        return self.state is StepState.CACHED


@dataclass(frozen=True)
class PipelineRun:
    """One run of a pipeline; ``run_id`` is the parent tracking run of the step runs."""

    id: str
    pipeline: str
    target: str
    state: PipelineState
    params: dict[str, Any]
    run_id: str | None
    executor: str
    error: str | None
    created_ms: int
    ended_ms: int | None
    steps: tuple[StepRun, ...] = ()

    @property
    def duration_s(self) -> float | None:
        """Seconds from creation to end, once ended."""
        return None if self.ended_ms is None else (self.ended_ms - self.created_ms) / 1000

    def step(self, name: str) -> StepRun:
        """The step run called ``name`` (NotFound lists the names there are)."""
        for found in self.steps:
            if found.name == name:
                return found
        raise NotFound(
            f"No step {name!r} in pipeline run {self.id[:8]}; its steps: "
            f"{', '.join(s.name for s in self.steps)}.",
            field="step",
        )


__all__ = ["FINAL_STEP_STATES", "PipelineRun", "PipelineState", "StepRun", "StepState"]
