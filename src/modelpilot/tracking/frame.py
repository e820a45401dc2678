"""Runs as a DataFrame: what ``mp.search_runs`` returns (the search itself runs in SQL,
tracking/query.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from modelpilot.tracking.entities import Run

_ATTRIBUTE_COLUMNS = [
    "run_id",
    "experiment",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
]


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: attributes, then ``metrics.*``, ``params.*`` and ``tags.*`` columns."""
    records: list[dict[str, Any]] = []
    for run in runs:
        record: dict[str, Any] = {
            "run_id": run.id,
            "experiment": run.experiment,
            "name": run.name,
            "status": run.status.value,
            "start_time": pd.Timestamp(run.start_ms, unit="ms", tz="UTC"),
            "end_time": pd.Timestamp(run.end_ms, unit="ms", tz="UTC") if run.end_ms else pd.NaT,
            "parent_run_id": run.parent_run_id,
        }
        record.update({f"metrics.{k}": v for k, v in run.metrics.items()})
        record.update({f"params.{k}": v for k, v in run.params.items()})
        record.update({f"tags.{k}": v for k, v in run.tags.items()})
        records.append(record)
    columns = _ATTRIBUTE_COLUMNS
    frame = pd.DataFrame.from_records(records, columns=None if records else columns)
    extra = sorted(c for c in frame.columns if c not in columns)
    return frame[columns + extra]
