"""The candidate table: one row per optimised candidate plus its source, with what each
gains (size, latency, rows/s) and what it costs (fidelity, holdout metric).

It is stored as an ``optimization`` record on every candidate and shown on its model card.

>>> row = CandidateRow("churn/4", "source", "sklearn", "source", 1000, {"p50_ms_1": 1.0})
>>> table = CandidateTable("churn/4", [row])
>>> CandidateTable.from_dict(table.to_dict()) == table
True
>>> table.to_frame().loc[0, "size_bytes"]
np.int64(1000)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

COLUMNS = [
    "ref",
    "target",
    "flavor",
    "status",
    "size_bytes",
    "p50_ms_1",
    "p99_ms_1",
    "p50_ms_64",
    "p99_ms_64",
    "rows_per_s_64",
    "agreement_data",
    "max_abs_proba_diff_data",
    "mean_abs_proba_diff_data",
    "agreement_holdout",
    "max_abs_proba_diff_holdout",
    "mean_abs_proba_diff_holdout",
    "metric",
    "holdout_metric",
    "metric_diff",
    "metric_diff_lower",
    "metric_diff_upper",
]


@dataclass(frozen=True)
class CandidateRow:
    """One model in the table. ``status``: ``source``, ``passed`` or ``failed`` (fidelity)."""

    ref: str
    target: str
    flavor: str
    status: str
    size_bytes: int | None
    speed: dict[str, float] = field(default_factory=dict)
    fidelity_data: dict[str, Any] | None = None
    fidelity_holdout: dict[str, Any] | None = None
    metric: str | None = None
    holdout_metric: float | None = None
    metric_diff: float | None = None
    metric_diff_lower: float | None = None
    metric_diff_upper: float | None = None

    def flat(self) -> dict[str, Any]:
        """The row as the table's columns."""
        out: dict[str, Any] = {
            "ref": self.ref,
            "target": self.target,
            "flavor": self.flavor,
            "status": self.status,
            "size_bytes": self.size_bytes,
            **self.speed,
            "metric": self.metric,
            "holdout_metric": self.holdout_metric,
            "metric_diff": self.metric_diff,
            "metric_diff_lower": self.metric_diff_lower,
            "metric_diff_upper": self.metric_diff_upper,
        }
        for where, fidelity in (("data", self.fidelity_data), ("holdout", self.fidelity_holdout)):
            for key in ("agreement", "max_abs_proba_diff", "mean_abs_proba_diff"):
                out[f"{key}_{where}"] = None if fidelity is None else fidelity.get(key)
        return out


@dataclass(frozen=True)
class CandidateTable:
    """The source and its candidates, as measured in one ``optimize`` run."""

    source: str
    rows: list[CandidateRow]
    skipped: dict[str, str] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per model, the columns of :data:`COLUMNS`."""
        return pd.DataFrame([r.flat() for r in self.rows], columns=COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what the ``optimization`` record stores)."""
        return {
            "source": self.source,
            "rows": [asdict(r) for r in self.rows],
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateTable:
        """Inverse of :meth:`to_dict`."""
        rows = [CandidateRow(**r) for r in data.get("rows", [])]
        return cls(str(data["source"]), rows, dict(data.get("skipped") or {}))

    def ratio(self, ref: str, column: str) -> float | None:
        """``column`` of the source divided by the candidate's (a speed-up for latencies)."""
        values = {r.ref: r.flat().get(column) for r in self.rows}
        base, value = values.get(self.source), values.get(ref)
        if not isinstance(base, (int, float)) or not isinstance(value, (int, float)) or not value:
            return None
        return float(base) / float(value)
