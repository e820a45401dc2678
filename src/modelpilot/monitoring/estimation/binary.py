"""CBPE for binary classifiers: the expected confusion matrix of calibrated probabilities.

Summing the calibrated positive-class probabilities of a chunk gives its expected confusion
matrix, and from it the expected accuracy, precision, recall, F1 and ROC AUC (the area under
the expected ROC curve). Intervals: the metric on label sets drawn from those probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.estimation.common import (
    BoolArray,
    CalibratedEstimator,
    FloatArray,
    Rows,
    expected_auc,
    isotonic,
    probabilities,
    quantile_interval,
    rank_auc,
    require,
)

METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")


class BinaryEstimator(CalibratedEstimator):
    """Calibrated probabilities of the analysis rows, with the reference they came from."""

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        analysis: pd.DataFrame,
        *,
        y_true: str,
        y_proba: str,
        y_pred: str | None,
        calibrate: bool,
        confidence: float,
        n_simulations: int,
    ) -> BinaryEstimator:
        """Read both frames and calibrate the analysis scores on the reference labels."""
        ref = _Columns.read(reference, y_true, y_proba, y_pred, True)
        cur = _Columns.read(analysis, y_true, y_proba, y_pred, False)
        calibrated = isotonic(ref.proba, ref.labels, cur.proba) if calibrate else cur.proba
        return cls(ref, cur, calibrated, confidence, n_simulations)

    def estimate(self, metric: str, part: slice, rng: np.random.Generator) -> tuple[float, ...]:
        """The metric of the chunk's expected confusion matrix, and its simulated interval."""
        c, score, pred = self.calibrated[part], self.cur.proba[part], self.cur.pred[part]
        return estimate_metric(
            metric, c, score, pred, confidence=self.confidence, n_simulations=self.n_sims, rng=rng
        )

    def realised(self, metric: str, part: slice) -> tuple[float | None, int]:
        """The metric on the chunk's labelled rows."""
        labels = self.cur.labels[part]
        known = ~np.isnan(labels)
        if not known.any():
            return None, 0
        score, pred = self.cur.proba[part][known], self.cur.pred[part][known]
        return _realised(metric, labels[known] == 1, score, pred), int(known.sum())

    def reference_metric(self, metric: str, rows: Rows) -> float | None:
        """The metric on reference ``rows``."""
        ref = self.ref
        return _realised(metric, ref.labels[rows] == 1, ref.proba[rows], ref.pred[rows])


def estimate_metric(
    name: str,
    calibrated: FloatArray,
    score: FloatArray,
    pred: BoolArray,
    *,
    confidence: float,
    n_simulations: int,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """The CBPE estimate of metric ``name`` on one group of predictions, and the interval
    where its realised value should fall if the calibration holds (``confidence``, from
    ``n_simulations`` label sets drawn from ``calibrated``). Chunks and slices both use it.

    >>> c = np.linspace(0.05, 0.95, 400)
    >>> value, lower, upper = estimate_metric("accuracy", c, c, c >= 0.5, confidence=0.9,
    ...                                       n_simulations=200, rng=np.random.default_rng(0))
    >>> bool(lower < value < upper), round(value, 2)
    (True, 0.73)
    """
    labels = rng.random((n_simulations, calibrated.size)) < calibrated
    draws = _metric_rows(name, labels, score, pred)
    return (_expected(name, calibrated, score, pred), *quantile_interval(draws, confidence))


class _Columns:
    """Validated label, probability and prediction arrays of one frame."""

    def __init__(self, proba: FloatArray, pred: BoolArray, labels: FloatArray) -> None:
        self.proba = proba
        self.pred = pred
        self.labels = labels  # 0.0 / 1.0, NaN where unknown
        self.n = int(proba.size)

    @classmethod
    def read(
        cls, frame: pd.DataFrame, y_true: str, y_proba: str, y_pred: str | None, labelled: bool
    ) -> _Columns:
        role = "reference" if labelled else "analysis"
        needed = [y_proba] + ([y_true] if labelled else []) + ([y_pred] if y_pred else [])
        hint = (
            " Pass y_pred=None to use y_proba >= 0.5."
            if y_pred and y_pred not in frame.columns
            else ""
        )
        if y_proba not in frame.columns:
            hint += (
                " For a multiclass model pass y_proba={class: column}; for a regression model "
                "pass task='regression'."
            )
        require(frame, needed, role, hint)
        proba = probabilities(
            frame[y_proba],
            f"{role} column {y_proba!r}",
            "Pass the positive-class probability (predict_proba[:, 1]).",
        )
        if y_pred is None:
            pred = proba >= 0.5
        else:
            pred = _binary(frame[y_pred], f"{role} column {y_pred!r}", allow_null=False) == 1
        if y_true in frame.columns:
            labels = _binary(frame[y_true], f"{role} column {y_true!r}", allow_null=not labelled)
        else:
            labels = np.full(proba.size, np.nan)
        if labelled and np.unique(labels).size < 2:
            raise InvalidInput(
                f"The reference column {y_true!r} holds only one class ({shown(labels[0])}); "
                "expected both 0 and 1. Use a reference period with both outcomes.",
                field=y_true,
            )
        return cls(proba, pred, labels)


def _binary(series: pd.Series, where: str, *, allow_null: bool) -> FloatArray:
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"The {where} must hold 0/1 labels; got {shown(series.head(3).tolist())}. "
            "Encode the positive class as 1 and the negative class as 0, or pass "
            "y_proba={class: column} for a multiclass model.",
            field=str(series.name),
        ) from exc
    known = ~np.isnan(values)
    bad = (known & (values != 0) & (values != 1)) | (~known & (not allow_null))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"The {where} must hold 0/1 labels{'' if allow_null else ' with no nulls'}; row "
            f"{row} is {shown(values[row])}. Encode the positive class as 1, the negative as 0.",
            field=str(series.name),
        )
    return values


def _expected(name: str, c: FloatArray, score: FloatArray, pred: BoolArray) -> float:
    """The metric of the expected confusion matrix (or expected ROC curve)."""
    if name == "roc_auc":
        return expected_auc(c, score)
    tp = float(c[pred].sum())
    fp = float((1 - c[pred]).sum())
    positives = float(c.sum())
    if name == "accuracy":
        return (tp + float((1 - c[~pred]).sum())) / c.size
    if name == "precision":
        return tp / (tp + fp) if tp + fp > 0 else 0.0
    if name == "recall":
        return tp / positives if positives > 0 else 0.0
    return 2 * tp / (tp + fp + positives) if tp + fp + positives > 0 else 0.0


def _metric_rows(name: str, labels: BoolArray, score: FloatArray, pred: BoolArray) -> FloatArray:
    """The realised metric for each row of a (draws x rows) label matrix."""
    if name == "roc_auc":
        return rank_auc(labels, score)
    positives = labels.sum(axis=1).astype(np.float64)
    tp = (labels & pred).sum(axis=1).astype(np.float64)
    predicted = float(pred.sum())
    if name == "accuracy":
        return np.asarray((labels == pred).mean(axis=1), dtype=np.float64)
    if name == "precision":
        return tp / predicted if predicted > 0 else np.zeros(labels.shape[0])
    if name == "recall":
        recall = np.divide(tp, positives, out=np.zeros_like(tp), where=positives > 0)
        return np.asarray(recall, dtype=np.float64)
    denominator = predicted + positives
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return np.asarray(f1, dtype=np.float64)


def _realised(name: str, labels: BoolArray, score: FloatArray, pred: BoolArray) -> float | None:
    if name == "roc_auc" and (labels.all() or not labels.any()):
        return None  # AUC needs both classes
    return float(_metric_rows(name, labels[np.newaxis, :], score, pred)[0])
