"""The A/B (or canary) report: per-variant traffic, latency, errors and outcomes, with an
always-valid comparison that says plainly whether there is a winner yet.

Outcomes are the labels logged for a deployment (``mp.log_labels``): a conversion (0/1), a
revenue figure, or anything numeric; the comparison is the mSPRT of ``sequential.py`` on
the stable variant's outcomes against the candidate's, so looking at the report as often as
you like does not inflate false positives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.monitoring.labels import read_labels
from modelpilot.release.sequential import SequentialResult, msprt
from modelpilot.release.service import get_deployment
from modelpilot.store import Store

_Z95 = 1.959964


@dataclass(frozen=True)
class VariantSummary:
    """Traffic, latency, errors and outcome of one variant."""

    variant: str
    model: str
    requests: int
    share: float
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None
    outcome_n: int
    outcome_mean: float | None
    outcome_lower: float | None
    outcome_upper: float | None


@dataclass(frozen=True)
class ABReport:
    """The report for one deployment."""

    deployment: str
    variants: list[VariantSummary]
    comparison: SequentialResult | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        comparison = (
            None
            if self.comparison is None
            else {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.comparison.__dict__.items()
            }
        )
        return {
            "deployment": self.deployment,
            "variants": [v.__dict__ for v in self.variants],
            "comparison": comparison,
            "verdict": self.verdict,
        }


def ab_report(
    store: Store, home: Path, name: str, *, since_ms: int = 0, alpha: float = 0.05
) -> ABReport:
    """Build the report from the prediction log and the labels."""
    deployment = get_deployment(store, name)
    config = deployment.config
    logged = _logged(home / "predictions", name, since_ms)
    labels = read_labels(home, name)
    if not labels.empty and not logged.empty:
        logged = logged.merge(labels[["request_id", "label"]], on="request_id", how="left")
    total = max(len(logged), 1)
    summaries = []
    outcomes: dict[str, np.ndarray] = {}
    for variant in (v for v in config.variants if v.role != "shadow"):
        rows = logged[logged["variant"] == variant.name] if not logged.empty else logged
        values = _numeric(rows["label"]) if "label" in rows else np.array([])
        outcomes[variant.name] = values
        summaries.append(_summary(variant.name, variant.ref, rows, total, values))
    candidate = config.candidate()
    comparison = None
    if candidate is not None:
        comparison = msprt(outcomes[config.stable.name], outcomes[candidate.name], alpha=alpha)
        verdict = comparison.verdict.replace("B (challenger)", candidate.name).replace(
            "A (stable)", "stable"
        )
    else:
        verdict = "Only the stable variant serves; start an A/B test or a canary to compare."
    return ABReport(name, summaries, comparison, verdict)


def _logged(folder: Path, name: str, since_ms: int) -> pd.DataFrame:
    import duckdb

    if not any(folder.glob("**/seg-*.parquet")):
        return pd.DataFrame(columns=["request_id", "variant", "latency_ms", "error"])
    glob = str(folder / "**" / "seg-*.parquet").replace("'", "''")
    with duckdb.connect() as con:
        return con.execute(
            "SELECT request_id, any_value(variant) AS variant, max(latency_ms) AS latency_ms, "
            f"any_value(error) AS error FROM read_parquet('{glob}', union_by_name = true) "
            "WHERE deployment = ? AND timestamp_ms >= ? GROUP BY request_id",
            [name, since_ms],
        ).df()


def _numeric(values: pd.Series) -> np.ndarray:
    present = values.dropna()
    if present.empty:
        return np.array([])
    if present.map(lambda v: isinstance(v, (bool, int, float, np.number))).all():
        return present.astype(np.float64).to_numpy()
    return np.array([])  # string labels have no mean; they feed accuracy in monitoring instead


def _summary(
    name: str, model: str, rows: pd.DataFrame, total: int, values: np.ndarray
) -> VariantSummary:
    requests = len(rows)
    latency = rows["latency_ms"].to_numpy(dtype=np.float64) if requests else np.array([])
    errors = int(rows["error"].notna().sum()) if requests else 0
    mean = lower = upper = None
    if values.size:
        mean = float(values.mean())
        half = (
            _Z95 * float(values.std(ddof=1)) / math.sqrt(values.size)
            if values.size > 1
            else math.inf
        )
        lower, upper = mean - half, mean + half
    return VariantSummary(
        name,
        model,
        requests,
        requests / total,
        errors / requests if requests else 0.0,
        float(np.percentile(latency, 50)) if latency.size else None,
        float(np.percentile(latency, 99)) if latency.size else None,
        int(values.size),
        mean,
        lower,
        upper,
    )
