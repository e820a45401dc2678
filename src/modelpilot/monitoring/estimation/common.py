"""What every task's estimator shares: the chunk loop, the alert thresholds, input checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.errors import InvalidInput, shown

MIN_REFERENCE_CHUNKS = 3  # fewer full reference chunks than this: bootstrap the thresholds
_BOOTSTRAPS = 200
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Rows = slice | NDArray[np.int64]


class CalibratedEstimator:
    """What the classification estimators (CBPE binary and multiclass) keep after fitting:
    both frames' columns, the analysis rows' calibrated probabilities and the interval's
    settings. Subclasses read their own column kinds in ``fit``."""

    upper_limit = 1.0

    def __init__(
        self, ref: Any, cur: Any, calibrated: FloatArray, confidence: float, n_sims: int
    ) -> None:
        self.ref = ref
        self.cur = cur
        self.calibrated = calibrated
        self.confidence = confidence
        self.n_sims = n_sims
        self.n_reference: int = ref.n
        self.n_analysis: int = cur.n


class TaskEstimator(Protocol):
    """A fitted estimator of one task: what :func:`chunk_table` asks of it."""

    n_reference: int
    n_analysis: int
    upper_limit: float  # the metric's largest possible value (1 for rates, inf for errors)

    def estimate(self, metric: str, part: slice, rng: np.random.Generator) -> tuple[float, ...]:
        """(estimate, lower, upper) of the metric on analysis rows ``part``."""
        ...

    def realised(self, metric: str, part: slice) -> tuple[float | None, int]:
        """The metric on the labelled analysis rows of ``part`` and how many there were."""
        ...

    def reference_metric(self, metric: str, rows: Rows) -> float | None:
        """The realised metric on reference ``rows`` (None where it is undefined)."""
        ...


def chunk_table(
    estimator: TaskEstimator, metrics: Sequence[str], chunk_size: int, rng: np.random.Generator
) -> pd.DataFrame:
    """One row per chunk and metric: estimate, interval, realised value, thresholds, alert."""
    rows: list[dict[str, Any]] = []
    for name in metrics:
        low_t, high_t = thresholds(estimator, name, chunk_size, rng)
        for index, start in enumerate(range(0, estimator.n_analysis, chunk_size)):
            part = slice(start, min(start + chunk_size, estimator.n_analysis))
            estimate, lower, upper = estimator.estimate(name, part, rng)
            realised, n_labels = estimator.realised(name, part)
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


def thresholds(
    estimator: TaskEstimator, name: str, chunk_size: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Mean +- 3 sd of the realised metric over reference chunks of ``chunk_size`` rows
    (over bootstrap samples when the reference holds fewer than three such chunks)."""
    n = estimator.n_reference
    full = n // chunk_size
    parts: list[Rows]
    if full >= MIN_REFERENCE_CHUNKS:
        parts = [slice(i * chunk_size, (i + 1) * chunk_size) for i in range(full)]
    else:
        parts = [rng.integers(0, n, min(chunk_size, n)) for _ in range(_BOOTSTRAPS)]
    values = [estimator.reference_metric(name, p) for p in parts]
    known = np.array([v for v in values if v is not None])
    if known.size < 2:
        return 0.0, estimator.upper_limit
    mean, sd = float(known.mean()), float(known.std(ddof=1))
    return max(mean - 3 * sd, 0.0), min(mean + 3 * sd, estimator.upper_limit)


def quantile_interval(draws: FloatArray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of simulated metric values."""
    lower, upper = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lower), float(upper)


def first_true(flags: BoolArray) -> int | None:
    """The position of the first True in ``flags`` (the row an error names), else None."""
    found = np.flatnonzero(flags)
    return int(found[0]) if found.size else None


def require(frame: pd.DataFrame, names: Sequence[str], role: str, hint: str) -> None:
    """InvalidInput naming the missing columns, the ones that exist and ``hint``."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise InvalidInput(
            f"Column(s) {shown(missing)} missing from the {role} data; it has "
            f"{shown([str(c) for c in frame.columns])}.{hint}",
            field=str(missing[0]),
        )


def probabilities(series: pd.Series, where: str, hint: str) -> FloatArray:
    """The column as float64 probabilities, or InvalidInput naming the first bad row."""
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
            f"{shown(values[row])}. {hint}",
            field=str(series.name),
        )
    return values


def isotonic(scores: FloatArray, outcomes: FloatArray, new_scores: FloatArray) -> FloatArray:
    """``new_scores`` mapped through an isotonic fit of 0/1 ``outcomes`` on ``scores``
    (Zadrozny and Elkan, KDD 2002)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(scores, outcomes)
    return np.asarray(iso.predict(new_scores), dtype=np.float64)


def rank_auc(labels: BoolArray, score: FloatArray) -> FloatArray:
    """ROC AUC of ``score`` for each row of a (draws x rows) label matrix (Mann-Whitney U);
    0.5 where a row has one class only."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    positives = labels.sum(axis=1).astype(np.float64)
    negatives = labels.shape[1] - positives
    u = labels @ ranks - positives * (positives + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = u / (positives * negatives)
    return np.asarray(np.where((positives > 0) & (negatives > 0), auc, 0.5), dtype=np.float64)


def expected_auc(c: FloatArray, score: FloatArray) -> float:
    """Area under the expected ROC curve, ``c`` the calibrated positive probabilities."""
    # Expected positive and negative mass per distinct score; each positive mass beats the
    # negative mass at lower scores and ties half of it (the trapezoid of the expected ROC).
    values, group = np.unique(score, return_inverse=True)
    pos = np.bincount(group, weights=c, minlength=values.size)
    neg = np.bincount(group, weights=1 - c, minlength=values.size)
    below = np.cumsum(neg) - neg
    total = pos.sum() * neg.sum()
    return float(np.sum(pos * (below + 0.5 * neg)) / total) if total > 0 else 0.5
