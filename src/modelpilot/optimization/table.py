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

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

COLUMNS = [
    "ref",
    "target",
    "flavor",
    "status",
    "size_bytes",
    "load_peak_bytes",
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
    "pareto",
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
    # Growth of the process's peak memory while the package loads (Linux; None elsewhere).
    load_peak_bytes: int | None = None
    # No other row is at least as good on size, load memory, latency at batch 1, rows/s at
    # batch 64 and quality (holdout metric, else agreement) and better on one (mark_pareto).
    pareto: bool | None = None

    def flat(self) -> dict[str, Any]:
        """The row as the table's columns."""
        out: dict[str, Any] = {
            "ref": self.ref,
            "target": self.target,
            "flavor": self.flavor,
            "status": self.status,
            "size_bytes": self.size_bytes,
            "load_peak_bytes": self.load_peak_bytes,
            **self.speed,
            "metric": self.metric,
            "holdout_metric": self.holdout_metric,
            "metric_diff": self.metric_diff,
            "metric_diff_lower": self.metric_diff_lower,
            "metric_diff_upper": self.metric_diff_upper,
            "pareto": self.pareto,
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


def mark_pareto(rows: list[CandidateRow]) -> list[CandidateRow]:
    """The rows with ``pareto`` set: True for each row no other row dominates.

    Lower is better for size, load memory and latency at batch 1; higher for rows/s at batch
    64 and for quality (the holdout metric when every row has one, else the agreement on the
    data, the source counting as 1). An objective a row lacks is left out of its comparisons.

    >>> fast = CandidateRow("m/2", "onnx", "onnx", "passed", 10, {"p50_ms_1": 0.1})
    >>> slow = CandidateRow("m/1", "source", "sklearn", "source", 50, {"p50_ms_1": 1.0})
    >>> [r.pareto for r in mark_pareto([slow, fast])]
    [False, True]
    """
    points = [_objectives(row, rows) for row in rows]
    return [
        replace(
            row, pareto=not any(_dominates(other, mine) for other in points if other is not mine)
        )
        for row, mine in zip(rows, points, strict=True)
    ]


def _objectives(row: CandidateRow, rows: list[CandidateRow]) -> list[float | None]:
    """The row's objectives, each as "lower is better"."""
    flat = row.flat()
    by_metric = all(r.holdout_metric is not None for r in rows)
    quality = row.holdout_metric if by_metric else (
        1.0 if row.status == "source" else flat.get("agreement_data")
    )  # fmt: skip

    def neg(value: Any) -> float | None:
        return None if value is None else -float(value)

    def pos(value: Any) -> float | None:
        return None if value is None else float(value)

    return [
        pos(row.size_bytes),
        pos(row.load_peak_bytes),
        pos(flat.get("p50_ms_1")),
        neg(flat.get("rows_per_s_64")),
        neg(quality),
    ]


def _dominates(a: list[float | None], b: list[float | None]) -> bool:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return bool(pairs) and all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)
