"""Calibration: do predicted probabilities match observed frequencies?

Binary tasks bin the positive-class probability; multiclass tasks bin the top-label
confidence (the largest probability) against whether the top label was right (Guo et al.,
"On Calibration of Modern Neural Networks", ICML 2017). Bins are ``n_bins`` equal-width
intervals on [0, 1], assigned as scikit-learn's ``calibration_curve`` does, so the
reliability-diagram points agree with it.

Expected calibration error is the row-weighted mean gap between observed frequency and mean
prediction per bin, ``ECE = Σ_b (n_b / n) |obs_b − conf_b|``, which is ``Σ_b |Σ_{i∈b}(o_i −
c_i)| / n``: in [0, 1], 0 for a perfectly calibrated model. The maximum calibration error
(MCE) is the largest gap over non-empty bins. The ECE's interval comes from the same
vectorised bootstrap as every metric.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=20_000)
>>> y = (rng.uniform(size=20_000) < p).astype(int)
>>> expected_calibration_error(y, p) < 0.02
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from modelpilot.evaluation.bootstrap import MetricValue, run_bootstrap, seed_for, to_metric_value
from modelpilot.evaluation.prediction import Predictions

Kind = Literal["positive_class", "top_label"]


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of the reliability diagram."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    fraction_positive: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_predicted": self.mean_predicted,
            "fraction_positive": self.fraction_positive,
        }


@dataclass(frozen=True)
class CalibrationResult:
    """ECE (with interval), MCE and the reliability diagram's bins."""

    kind: Kind
    n_bins: int
    ece: MetricValue
    mce: float | None
    bins: list[CalibrationBin]

    def to_svg(self) -> str:
        """The reliability diagram as inline SVG (observed vs predicted per non-empty bin)."""
        from modelpilot.evaluation.html import reliability_svg

        return reliability_svg(
            [
                (b.mean_predicted, b.fraction_positive, b.count)
                for b in self.bins
                if b.mean_predicted is not None and b.fraction_positive is not None
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_bins": self.n_bins,
            "ece": self.ece.to_dict(),
            "mce": self.mce,
            "bins": [b.to_dict() for b in self.bins],
        }


def bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each confidence, as ``sklearn.calibration.calibration_curve``."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], confidence)


def weighted_ece(
    confidence: np.ndarray, observed: np.ndarray, n_bins: int, w: np.ndarray
) -> np.ndarray:
    """ECE per weight row (see the module docstring for the definition)."""
    onehot = np.eye(n_bins)[bin_index(confidence, n_bins)]
    gap = w @ (onehot * (observed - confidence)[:, None])
    total = w.sum(axis=1)
    out = np.full(total.shape, np.nan)
    np.divide(np.abs(gap).sum(axis=1), total, out=out, where=total > 0)
    return out


def expected_calibration_error(
    y_true: np.ndarray, proba_positive: np.ndarray, n_bins: int = 10
) -> float:
    """ECE of positive-class probabilities against 0/1 labels (equal-width bins).

    >>> expected_calibration_error(np.array([0, 1, 1, 0]), np.array([0.0, 1.0, 1.0, 0.0]))
    0.0
    """
    conf = np.asarray(proba_positive, dtype=float)
    obs = np.asarray(y_true, dtype=float)
    return float(weighted_ece(conf, obs, n_bins, np.ones((1, conf.size)))[0])


def confidence_and_outcome(preds: Predictions) -> tuple[Kind, np.ndarray, np.ndarray] | None:
    """What is binned: positive-class probability (binary) or top-label confidence."""
    if preds.proba is None or preds.task == "regression":
        return None
    if preds.task == "binary":
        return "positive_class", preds.proba[:, 1], (preds.y == 1).astype(float)
    top = np.argmax(preds.proba, axis=1)
    return "top_label", preds.proba.max(axis=1), (top == preds.y).astype(float)


def evaluate_calibration(
    preds: Predictions, *, n_bins: int, n_bootstrap: int, confidence: float, seed: int
) -> CalibrationResult | None:
    """Calibration of a classifier with probabilities; ``None`` otherwise."""
    found = confidence_and_outcome(preds)
    if found is None:
        return None
    kind, conf, obs = found
    draws = run_bootstrap(
        preds.n,
        {"ece": lambda w: weighted_ece(conf, obs, n_bins, w)},
        n_bootstrap=n_bootstrap,
        seed=seed_for(seed, "calibration"),
    )
    bins = _bins(conf, obs, n_bins)
    gaps = [
        abs(b.fraction_positive - b.mean_predicted)
        for b in bins
        if b.fraction_positive is not None and b.mean_predicted is not None
    ]
    mce = max(gaps) if gaps else None
    return CalibrationResult(kind, n_bins, to_metric_value("ece", draws, confidence), mce, bins)


def _bins(conf: np.ndarray, obs: np.ndarray, n_bins: int) -> list[CalibrationBin]:
    idx = bin_index(conf, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    sum_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    sum_obs = np.bincount(idx, weights=obs, minlength=n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = []
    for b in range(n_bins):
        filled = counts[b] > 0
        out.append(
            CalibrationBin(
                float(edges[b]),
                float(edges[b + 1]),
                int(counts[b]),
                float(sum_conf[b] / counts[b]) if filled else None,
                float(sum_obs[b] / counts[b]) if filled else None,
            )
        )
    return out
