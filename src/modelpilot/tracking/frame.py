"""Runs as a DataFrame, filtered and ordered: the one implementation behind ``search_runs``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from modelpilot.tracking import search
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


def filter_and_order(frame: pd.DataFrame, filter: str, order_by: Sequence[str]) -> pd.DataFrame:
    """Rows matching ``filter`` (``metrics.auc > 0.9``), sorted by ``order_by``; runs without
    an ordering field sort last."""
    clauses = search.parse_filter(filter)
    ordering = search.parse_order_by(list(order_by))
    frame = search.apply(frame, clauses)
    if ordering:
        for column, _ in ordering:
            if column not in frame.columns:
                frame[column] = pd.NA
        frame = frame.sort_values(
            [c for c, _ in ordering],
            ascending=[a for _, a in ordering],
            na_position="last",
            kind="stable",
        )
    return frame.reset_index(drop=True)
