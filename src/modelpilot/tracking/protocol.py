"""The tracking seam: one typed interface, a local and an HTTP implementation.

The SDK, the CLI and the server call tracking through :class:`TrackingService` only, so the
same code runs in-process on a store (:class:`~modelpilot.tracking.local.LocalTracking`) or
against ``modelpilot server`` (``modelpilot.client.HttpTracking``).
tests/contract/test_tracking_service_contract.py runs one suite against every implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from modelpilot.tracking.entities import Experiment, MetricPoint, Run, RunStatus

MetricRow = tuple[str, float, int, int]  # key, value, step, timestamp_ms

# A page of runs is never unbounded: callers ask for at most this many at once.
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class RunPage:
    """One page of a run search; ``next_page_token`` is None on the last page."""

    runs: list[Run]
    next_page_token: str | None


@runtime_checkable
class TrackingService(Protocol):
    """What the SDK's tracking calls need, and nothing more."""

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if it does not exist yet."""

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        code_revision: str | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (created if needed)."""

    def get_run(self, run_id: str) -> Run:
        """A run with its params, tags and latest metrics."""

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix``; ``prefix`` itself when
        no run matches (the lookup that follows says NotFound); InvalidInput listing them when
        several do."""

    def list_experiments(self) -> list[Experiment]:
        """Every experiment, oldest first."""

    def set_status(self, run_id: str, status: RunStatus) -> None:
        """End a run (FINISHED, FAILED, KILLED) and stamp its end time."""

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record params; a different value for a logged key is a Conflict."""

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        """Set or overwrite tags."""

    def log_metrics(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Append metric points ``(key, value, step, timestamp_ms)`` in one batch."""

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of ``key``, by step then time."""

    def search_runs(
        self,
        experiment: str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        *,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> RunPage:
        """One page (at most ``max_results`` <= MAX_PAGE_SIZE runs) of matching runs."""


__all__ = ["MAX_PAGE_SIZE", "MetricRow", "RunPage", "TrackingService"]
