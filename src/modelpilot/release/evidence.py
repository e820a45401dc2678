"""Rollout evidence from the prediction log: requests, errors, p99 latency, a sample of
per-request latencies (for the latency guard's tail test), predictions.

Reads the data plane's Parquet segments with DuckDB (the log's format is the contract, so
``release`` needs no import of ``serving``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.release.rollout import VariantStats

_SAMPLE = 5000


class PredictionLogStats:
    """A :class:`~modelpilot.release.rollout.StatsSource` over ``<home>/predictions``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def variant_stats(
        self, deployment: str, variant: str, since_ms: int, until_ms: int
    ) -> VariantStats:
        """Evidence for one variant of a deployment in ``[since_ms, until_ms)``."""
        import duckdb

        if not any(self.folder.glob("**/seg-*.parquet")):
            return VariantStats()
        glob = str(self.folder / "**" / "seg-*.parquet").replace("'", "''")
        with duckdb.connect() as con:
            con.execute(
                f"CREATE VIEW p AS SELECT * FROM read_parquet('{glob}', union_by_name = true)"
            )
            columns = {row[0] for row in con.execute("DESCRIBE p").fetchall()}
            where = "deployment = ? AND variant = ? AND timestamp_ms >= ? AND timestamp_ms < ?"
            params: list[Any] = [deployment, variant, since_ms, until_ms]
            requests, errors, p99 = con.execute(
                "SELECT count(DISTINCT request_id), "
                "count(DISTINCT request_id) FILTER (WHERE error IS NOT NULL), "
                f"quantile_cont(latency_ms, 0.99) FROM p WHERE {where}",
                params,
            ).fetchone() or (0, 0, None)
            latencies = con.execute(
                "SELECT l FROM (SELECT max(latency_ms) AS l FROM p "
                f"WHERE {where} GROUP BY request_id) "
                f"USING SAMPLE reservoir({_SAMPLE} ROWS) REPEATABLE (0)",
                params,
            ).fetchall()
            score = _score_column(columns)
            predictions = None
            if score is not None:
                values = con.execute(
                    f'SELECT "{score}" FROM p WHERE {where} AND "{score}" IS NOT NULL '
                    f"LIMIT {_SAMPLE}",
                    params,
                ).fetchall()
                predictions = np.asarray([v[0] for v in values], dtype=np.float64)
        return VariantStats(
            requests=int(requests or 0),
            errors=int(errors or 0),
            p99_latency_ms=None if p99 is None else float(p99),
            predictions=predictions,
            latencies_ms=np.asarray([v[0] for v in latencies if v[0] is not None], np.float64),
        )


def _score_column(columns: set[str]) -> str | None:
    """The positive-class probability if logged, else the raw prediction."""
    probas = sorted(c for c in columns if c.startswith("out.proba."))
    if probas:
        return probas[-1]
    return "out.prediction" if "out.prediction" in columns else None
