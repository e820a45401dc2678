"""What tracking returns: frozen dataclasses, detached from any database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Life cycle of a run."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    created_ms: int


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric."""

    key: str
    value: float
    step: int
    timestamp_ms: int

    @property
    def timestamp(self) -> datetime:
        """The point's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


@dataclass(frozen=True)
class DatasetInput:
    """A dataset version a run consumed."""

    name: str
    digest: str
    role: str

    @property
    def version(self) -> str:
        """The short content hash people read and type."""
        return self.digest[:12]


@dataclass(frozen=True)
class Run:
    """A tracked run with its latest metric values."""

    id: str
    experiment: str
    name: str
    status: RunStatus
    start_ms: int
    end_ms: int | None
    parent_run_id: str | None
    code_revision: str | None
    environment: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list[DatasetInput] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
