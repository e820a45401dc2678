"""JSON forms of tracking entities: what the server sends and the HTTP client reads back.

One module owns the wire format, writer and reader together, so both ends agree.

>>> run = Run("ab12", "churn", "r1", RunStatus.RUNNING, 1, None, None, None, {})
>>> run_from_json(run_to_json(run)) == run
True
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from modelpilot.tracking.entities import DatasetInput, Experiment, MetricPoint, Run, RunStatus


def run_to_json(run: Run) -> dict[str, Any]:
    """A run as a JSON object."""
    data = asdict(run)
    data["status"] = run.status.value
    return data


def run_from_json(data: dict[str, Any]) -> Run:
    """The run a :func:`run_to_json` object describes."""
    fields = dict(data)
    fields["status"] = RunStatus(fields["status"])
    fields["datasets"] = [DatasetInput(**d) for d in fields.get("datasets", [])]
    return Run(**fields)


def experiment_to_json(experiment: Experiment) -> dict[str, Any]:
    """An experiment as a JSON object."""
    return asdict(experiment)


def experiment_from_json(data: dict[str, Any]) -> Experiment:
    """The experiment an :func:`experiment_to_json` object describes."""
    return Experiment(**data)


def points_to_json(points: list[MetricPoint]) -> list[list[float | int]]:
    """Metric history as ``[value, step, timestamp_ms]`` triples (compact for long runs)."""
    return [[p.value, p.step, p.timestamp_ms] for p in points]


def points_from_json(key: str, rows: list[list[Any]]) -> list[MetricPoint]:
    """The metric history :func:`points_to_json` wrote."""
    return [
        MetricPoint(key=key, value=float(v), step=int(s), timestamp_ms=int(t)) for v, s, t in rows
    ]
