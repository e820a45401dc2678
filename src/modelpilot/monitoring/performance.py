"""Classifier performance without labels: confidence-based performance estimation (CBPE).

When labels arrive late or never, a binary classifier's calibrated probability of the
positive class says how often each prediction should be right. Summing those probabilities
gives the expected confusion matrix of a chunk of predictions, and from it the expected
accuracy, precision, recall, F1 and ROC AUC (NannyML's CBPE; the ROC AUC is the area under
the expected ROC curve). Scores are first calibrated on the labelled reference with isotonic
regression, so the estimate holds under covariate shift as long as P(y | score) does not
change (no concept drift); concept drift is what :mod:`.concept` watches once labels come.

Uncertainty: ``lower``/``upper`` bracket where the realised metric of the chunk should fall
if the calibration holds (Monte Carlo over labels drawn from the calibrated probabilities,
seeded by ``seed``). Alerts: an estimate outside the reference's realised range for chunks of
that size (mean +- 3 standard deviations over reference chunks, or over bootstrap samples
when the reference is shorter than three chunks).

References: NannyML, "Confidence-based Performance Estimation (CBPE)",
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html;
B. Zadrozny and C. Elkan, "Transforming classifier scores into accurate multiclass
probability estimates", KDD 2002 (isotonic calibration).

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def frame(n):
...     p = rng.beta(2, 2, n)
...     return pd.DataFrame({"proba": p, "pred": (p >= 0.5).astype(int),
...                          "target": (rng.random(n) < p).astype(int)})
>>> out = estimate_performance(frame(20_000), frame(10_000), metric="accuracy")
>>> len(out), bool((out["estimated"] - out["realised"]).abs().max() < 0.03)
(2, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.profile import require_columns, require_frame

METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")
MIN_REFERENCE_CHUNKS = 3  # fewer full reference chunks than this: bootstrap the thresholds
_BOOTSTRAPS = 200
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def estimate_performance(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    *,
    y_true: str = "target",
    y_proba: str = "proba",
    y_pred: str | None = "pred",
    metric: str | Sequence[str] = "roc_auc",
    chunk_size: int = 5000,
    calibrate: bool = True,
    confidence: float = 0.95,
    n_simulations: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Estimate a binary classifier's performance per chunk of ``analysis``, without labels.

    ``reference`` needs labels (``y_true``), positive-class probabilities (``y_proba``) and,
    unless ``y_pred`` is None (then predictions are ``y_proba >= 0.5``), predicted labels.
    ``analysis`` needs the same, with labels optional: where some rows of a chunk have them,
    the realised metric on those rows is reported next to the estimate.

    Returns one row per chunk (and metric): ``chunk``, ``start``, ``end`` (row positions,
    end exclusive), ``n_rows``, ``metric``, ``estimated``, ``lower``, ``upper``,
    ``realised`` and ``n_labels`` (nullable), ``lower_threshold``, ``upper_threshold``,
    ``alert``.
    """
    metrics = _metrics(metric)
    _check_options(chunk_size, confidence, n_simulations)
    ref = _Columns.read(require_frame(reference, "reference"), y_true, y_proba, y_pred, True)
    cur = _Columns.read(require_frame(analysis, "analysis"), y_true, y_proba, y_pred, False)
    calibrated_cur = _calibrate(ref, cur, calibrate)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for name in metrics:
        low_t, high_t = _thresholds(ref, name, chunk_size, rng)
        for index, start in enumerate(range(0, cur.n, chunk_size)):
            part = slice(start, min(start + chunk_size, cur.n))
            c, score, pred = calibrated_cur[part], cur.proba[part], cur.pred[part]
            estimate, lower, upper = estimate_metric(
                name, c, score, pred, confidence=confidence, n_simulations=n_simulations, rng=rng
            )
            realised, n_labels = _realised_part(cur, part, name)
            rows.append(
                {
                    "chunk": index,
                    "start": part.start,
                    "end": part.stop,
                    "n_rows": part.stop - part.start,
                    "metric": name,
                    "estimated": estimate,
                    "lower": lower,
                    "upper": upper,
                    "realised": realised,
                    "n_labels": n_labels,
                    "lower_threshold": low_t,
                    "upper_threshold": high_t,
                    "alert": not low_t <= estimate <= high_t,
                }
            )
    out = pd.DataFrame(rows)
    out["realised"] = out["realised"].astype("Float64")
    out["n_labels"] = out["n_labels"].astype("Int64")
    return out


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
        try:
            require_columns(frame, needed, f"{role} data")
        except InvalidInput as exc:
            hint = " Pass y_pred=None to use y_proba >= 0.5." if y_pred else ""
            raise InvalidInput(exc.message + hint, field=exc.field) from exc
        proba = _probabilities(frame[y_proba], f"{role} column {y_proba!r}")
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


def _probabilities(series: pd.Series, where: str) -> FloatArray:
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"The {where} must hold probabilities in [0, 1]; got {shown(series.head(3).tolist())}.",
            field=str(series.name),
        ) from exc
    bad = ~((values >= 0) & (values <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"The {where} must hold probabilities in [0, 1] with no nulls; row {row} is "
            f"{shown(values[row])}. Pass the positive-class probability (predict_proba[:, 1]).",
            field=str(series.name),
        )
    return values


def _binary(series: pd.Series, where: str, *, allow_null: bool) -> FloatArray:
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"The {where} must hold 0/1 labels; got {shown(series.head(3).tolist())}. "
            "Encode the positive class as 1 and the negative class as 0.",
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


def _metrics(metric: str | Sequence[str]) -> list[str]:
    names = [metric] if isinstance(metric, str) else list(metric)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise InvalidInput(
            f"Unknown performance metric {shown(unknown or names)}; supported for binary "
            f"classification: {', '.join(METRICS)}.",
            field="metric",
        )
    return names


def _check_options(chunk_size: int, confidence: float, n_simulations: int) -> None:
    if chunk_size < 1:
        raise InvalidInput(f"chunk_size must be at least 1; got {shown(chunk_size)}.")
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be in (0, 1); got {shown(confidence)}.")
    if n_simulations < 10:
        raise InvalidInput(f"n_simulations must be at least 10; got {shown(n_simulations)}.")


def _calibrate(ref: _Columns, cur: _Columns, calibrate: bool) -> FloatArray:
    """The analysis probabilities mapped through an isotonic fit on the reference labels."""
    if not calibrate:
        return cur.proba
    return calibrate_probabilities(ref.proba, ref.labels, cur.proba)


def calibrate_probabilities(
    reference_proba: FloatArray, reference_labels: FloatArray, proba: FloatArray
) -> FloatArray:
    """``proba`` mapped through an isotonic fit of the 0/1 ``reference_labels`` on
    ``reference_proba``: what CBPE treats as each prediction's chance of being positive.

    >>> ref = np.array([0.1, 0.4, 0.6, 0.9])
    >>> calibrate_probabilities(ref, np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.2, 0.8]))
    array([0., 1.])
    """
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(reference_proba, reference_labels)
    return np.asarray(iso.predict(proba), dtype=np.float64)


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
    ``n_simulations`` label sets drawn from ``calibrated``).

    >>> c = np.linspace(0.05, 0.95, 400)
    >>> value, lower, upper = estimate_metric("accuracy", c, c, c >= 0.5, confidence=0.9,
    ...                                       n_simulations=200, rng=np.random.default_rng(0))
    >>> bool(lower < value < upper), round(value, 2)
    (True, 0.73)
    """
    estimate = _expected(name, calibrated, score, pred)
    draws = _simulate(name, calibrated, score, pred, n_simulations, rng)
    lower, upper = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return estimate, float(lower), float(upper)


def _expected(name: str, c: FloatArray, score: FloatArray, pred: BoolArray) -> float:
    """The metric of the expected confusion matrix (or expected ROC curve)."""
    if name == "roc_auc":
        return _expected_auc(c, score)
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


def _expected_auc(c: FloatArray, score: FloatArray) -> float:
    # Expected positive and negative mass per distinct score; each positive mass beats the
    # negative mass at lower scores and ties half of it (the trapezoid of the expected ROC).
    values, group = np.unique(score, return_inverse=True)
    pos = np.bincount(group, weights=c, minlength=values.size)
    neg = np.bincount(group, weights=1 - c, minlength=values.size)
    below = np.cumsum(neg) - neg
    total = pos.sum() * neg.sum()
    return float(np.sum(pos * (below + 0.5 * neg)) / total) if total > 0 else 0.5


def _simulate(
    name: str, c: FloatArray, score: FloatArray, pred: BoolArray, n: int, rng: np.random.Generator
) -> FloatArray:
    """The metric on ``n`` label sets drawn from the calibrated probabilities."""
    labels = rng.random((n, c.size)) < c
    return _metric_rows(name, labels, score, pred)


def _metric_rows(name: str, labels: BoolArray, score: FloatArray, pred: BoolArray) -> FloatArray:
    """The realised metric for each row of a (draws x rows) label matrix."""
    positives = labels.sum(axis=1).astype(np.float64)
    if name == "roc_auc":
        from scipy.stats import rankdata

        ranks = rankdata(score)
        negatives = labels.shape[1] - positives
        u = labels @ ranks - positives * (positives + 1) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = u / (positives * negatives)
        return np.where((positives > 0) & (negatives > 0), auc, 0.5)
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


def _realised_part(cur: _Columns, part: slice, name: str) -> tuple[float | None, int]:
    labels = cur.labels[part]
    known = ~np.isnan(labels)
    n_labels = int(known.sum())
    if n_labels == 0:
        return None, 0
    value = _realised(name, labels[known] == 1, cur.proba[part][known], cur.pred[part][known])
    return value, n_labels


def _realised(name: str, labels: BoolArray, score: FloatArray, pred: BoolArray) -> float | None:
    if name == "roc_auc" and (labels.all() or not labels.any()):
        return None  # AUC needs both classes
    return float(_metric_rows(name, labels[np.newaxis, :], score, pred)[0])


def _thresholds(
    ref: _Columns, name: str, chunk_size: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Mean +- 3 sd of the realised metric over reference chunks of ``chunk_size`` rows."""
    labels = ref.labels == 1
    full = ref.n // chunk_size
    parts: list[slice | NDArray[np.int64]]
    if full >= MIN_REFERENCE_CHUNKS:
        parts = [slice(i * chunk_size, (i + 1) * chunk_size) for i in range(full)]
    else:
        size = min(chunk_size, ref.n)
        parts = [rng.integers(0, ref.n, size) for _ in range(_BOOTSTRAPS)]
    values = [_realised(name, labels[p], ref.proba[p], ref.pred[p]) for p in parts]
    known = np.array([v for v in values if v is not None])
    mean, sd = float(known.mean()), float(known.std(ddof=1))
    return max(mean - 3 * sd, 0.0), min(mean + 3 * sd, 1.0)
