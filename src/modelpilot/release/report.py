"""The A/B (or canary) report: per-variant traffic, latency, errors, model quality against
the labels, and an always-valid comparison that says plainly whether there is a winner yet.

Labels are what ``mp.log_labels`` recorded for a deployment. Two different figures come from
them, and the report names each:

- quality: each variant's predictions scored against the labels, with the metric named:
  ROC AUC (when the log holds class probabilities and the labels have two classes) and
  accuracy for classifiers, MAE and RMSE for regressors;
- the mean label (a conversion rate, a revenue figure) with its 95% interval. The comparison
  is the mSPRT of ``sequential.py`` on the stable variant's labels against the candidate's,
  so looking at the report as often as you like does not inflate false positives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.predictions import PredictionReader, join_labels, read_labels
from modelpilot.release.protocol import DeploymentService
from modelpilot.release.sequential import SequentialResult, msprt

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
    quality: dict[str, float] = field(default_factory=dict)  # metric name -> value, vs labels
    quality_n: int = 0  # labelled requests the quality figures rest on


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
    deployments: DeploymentService,
    home: Path,
    name: str,
    *,
    since_ms: int = 0,
    alpha: float = 0.05,
) -> ABReport:
    """Build the report from the prediction log and the labels in ``home`` (the data plane's
    home), for the deployment as ``deployments`` has it (a local store, or a server)."""
    deployment = deployments.get_deployment(name)
    config = deployment.config
    logged = PredictionReader.of_home(home).requests(name, since_ms=since_ms)
    labels = read_labels(home, name)
    if not labels.empty and not logged.empty:
        logged = join_labels(logged, labels, how="left")
    total = max(len(logged), 1)
    summaries = []
    outcomes: dict[str, np.ndarray] = {}
    for variant in (v for v in config.variants if v.role != "shadow"):
        rows = logged[logged["variant"] == variant.name] if not logged.empty else logged
        values = _numeric(rows["label"]) if "label" in rows else np.array([])
        outcomes[variant.name] = values
        summary = _summary(variant.name, variant.ref, rows, total, values)
        quality, quality_n = quality_against_labels(rows)
        summaries.append(replace(summary, quality=quality, quality_n=quality_n))
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


def quality_against_labels(rows: pd.DataFrame) -> tuple[dict[str, float], int]:
    """Each labelled request's prediction scored against its label, with the metric named.

    Classifiers (class probabilities logged, or labels that are not numbers, or whole-number
    predictions) get ``accuracy``, plus ``roc_auc`` when the labels have two classes and the
    positive class's probability is in the log; regressors get ``mae`` and ``rmse``.

    >>> rows = pd.DataFrame({"label": [1.0, 2.0, 4.0], "out.prediction": [1.5, 2.0, 3.0]})
    >>> quality_against_labels(rows)
    ({'mae': 0.5, 'rmse': 0.6454972243679028}, 3)
    """
    if "label" not in rows or "out.prediction" not in rows:
        return {}, 0
    joined = rows[rows["label"].notna() & rows["out.prediction"].notna()]
    if joined.empty:
        return {}, 0
    truth, predicted = joined["label"].to_numpy(), joined["out.prediction"].to_numpy()
    if not _is_classification(joined, truth, predicted):
        error = predicted.astype(np.float64) - truth.astype(np.float64)
        mae, rmse = float(np.abs(error).mean()), float(np.sqrt((error**2).mean()))
        return {"mae": mae, "rmse": rmse}, len(joined)
    truth_text = [_class_text(t) for t in truth]
    hits = [t == _class_text(p) for t, p in zip(truth_text, predicted, strict=True)]
    figures = {"accuracy": float(np.mean(hits))}
    classes = sorted(set(truth_text))
    score_column = f"out.proba.{classes[-1]}" if len(classes) == 2 else ""
    if score_column in joined and joined[score_column].notna().all():
        from sklearn.metrics import roc_auc_score

        positive = np.asarray([t == classes[-1] for t in truth_text])
        figures["roc_auc"] = float(roc_auc_score(positive, joined[score_column]))
    return figures, len(joined)


def _class_text(value: object) -> str:
    """A class as the log names it (``out.proba.1``): 1, 1.0 and np.int64(1) are all ``1``."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _is_classification(joined: pd.DataFrame, truth: np.ndarray, predicted: np.ndarray) -> bool:
    if any(c.startswith("out.proba.") for c in joined.columns):
        return True
    numbers = (int, float, np.number)
    if not all(isinstance(v, numbers) and not isinstance(v, bool) for v in (*truth, *predicted)):
        return True
    values = np.concatenate([truth, predicted]).astype(np.float64)
    return bool(np.all(values == np.round(values)))


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
