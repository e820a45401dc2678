"""DLE for regressors: a model of the loss, trained on the labelled reference.

Direct Loss Estimation (NannyML's DLE) fits gradient-boosted trees
(scikit-learn's ``HistGradientBoostingRegressor``) on the reference's features plus the
prediction to predict each row's absolute error and squared error. A chunk's expected MAE is
the mean predicted absolute error; its expected RMSE the root of the mean predicted squared
error. This holds under covariate shift as long as the error's distribution given the
features does not change (no concept drift) and the shifted rows stay where the reference had
data (trees do not extrapolate).

Interval: six loss models are fitted on bootstrap samples of the reference. Out of bag, the
spread of a row's loss around its prediction is modelled as proportional to the prediction
squared (errors that vary in scale with the features), which gives the sampling error of the
chunk's mean loss; the spread of the chunk's mean loss between the bootstrap models adds the
loss model's own error. Both enter a normal interval (for RMSE, on the mean squared error,
then rooted).

Reference: NannyML, "Direct Loss Estimation",
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html#direct-loss-estimation-dle
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.estimation.common import FloatArray, Rows, require

METRICS = ("mae", "rmse")
_MODELS = 6  # bootstrap models: their spread is the loss model's own uncertainty
_MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 bins per categorical feature
_MIN_REFERENCE_ROWS = 30


class RegressionEstimator:
    """Predicted absolute and squared errors of the analysis rows (one column per model)."""

    upper_limit = math.inf

    def __init__(
        self,
        ref: tuple[FloatArray, FloatArray],
        cur: tuple[FloatArray, FloatArray],
        losses: dict[str, tuple[FloatArray, float]],
        confidence: float,
    ) -> None:
        self.ref = ref  # (truth, prediction)
        self.cur = cur
        self.losses = losses  # "abs"/"squared": (analysis rows x models, dispersion ratio)
        self.confidence = confidence
        self.n_reference = int(ref[0].size)
        self.n_analysis = int(cur[1].size)

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        analysis: pd.DataFrame,
        *,
        y_true: str,
        y_pred: str,
        features: Sequence[str] | None,
        confidence: float,
        seed: int,
    ) -> RegressionEstimator:
        """Validate both frames and fit the bootstrap loss models on the reference."""
        hint = " Pass y_pred='<prediction column>' and features=[...]."
        require(reference, [y_true, y_pred], "reference", hint)
        require(analysis, [y_pred], "analysis", hint)
        if features is None:
            features = [str(c) for c in reference.columns if c not in (y_true, y_pred)]
        require(reference, features, "reference", " Pass features=[...] both frames have.")
        require(analysis, features, "analysis", " Pass features=[...] both frames have.")
        if len(reference) < _MIN_REFERENCE_ROWS:
            raise InvalidInput(
                f"The reference data has {len(reference)} rows; DLE needs at least "
                f"{_MIN_REFERENCE_ROWS} labelled rows to learn the model's errors.",
                field="reference",
            )
        truth = _numbers(reference[y_true], f"reference column {y_true!r}", allow_null=False)
        ref_pred = _numbers(reference[y_pred], f"reference column {y_pred!r}", allow_null=False)
        cur_pred = _numbers(analysis[y_pred], f"analysis column {y_pred!r}", allow_null=False)
        labels = (
            _numbers(analysis[y_true], f"analysis column {y_true!r}", allow_null=True)
            if y_true in analysis.columns
            else np.full(cur_pred.size, np.nan)
        )
        x_ref, x_cur, categorical = _design(reference, analysis, list(features))
        x_ref, x_cur = np.column_stack([x_ref, ref_pred]), np.column_stack([x_cur, cur_pred])
        categorical = [*categorical, False]
        error = truth - ref_pred
        losses = {
            "abs": _bootstrap_fit(x_ref, np.abs(error), x_cur, categorical, seed),
            "squared": _bootstrap_fit(x_ref, error**2, x_cur, categorical, seed),
        }
        return cls((truth, ref_pred), (labels, cur_pred), losses, confidence)

    def estimate(self, metric: str, part: slice, rng: np.random.Generator) -> tuple[float, ...]:
        """Expected MAE or RMSE of the chunk with its normal interval."""
        per_model, ratio = self.losses["abs" if metric == "mae" else "squared"]
        rows = per_model[part]
        loss = rows.mean(axis=1)
        n = loss.size
        mean = float(loss.mean())
        sampling = ratio * float(np.sum(loss**2)) / n**2
        model = float(rows.mean(axis=0).var(ddof=1))  # one bootstrap model's, conservative
        z = float(_normal_quantile((1 + self.confidence) / 2))
        half = z * math.sqrt(sampling + model)
        if metric == "mae":
            return mean, max(mean - half, 0.0), mean + half
        return math.sqrt(mean), math.sqrt(max(mean - half, 0.0)), math.sqrt(mean + half)

    def realised(self, metric: str, part: slice) -> tuple[float | None, int]:
        """MAE or RMSE on the chunk's labelled rows."""
        labels, pred = self.cur[0][part], self.cur[1][part]
        known = ~np.isnan(labels)
        if not known.any():
            return None, 0
        return _loss(metric, labels[known] - pred[known]), int(known.sum())

    def reference_metric(self, metric: str, rows: Rows) -> float | None:
        """MAE or RMSE on reference ``rows``."""
        return _loss(metric, self.ref[0][rows] - self.ref[1][rows])


def _loss(metric: str, error: FloatArray) -> float:
    if metric == "mae":
        return float(np.mean(np.abs(error)))
    return float(np.sqrt(np.mean(error**2)))


def _normal_quantile(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _numbers(series: pd.Series, where: str, *, allow_null: bool) -> FloatArray:
    """A numeric column as float64; InvalidInput naming the first bad row otherwise."""
    text = "numbers" + ("" if allow_null else " with no nulls")
    if pd.api.types.is_bool_dtype(series) or not (
        pd.api.types.is_numeric_dtype(series) or series.dtype == object
    ):
        raise InvalidInput(
            f"The {where} must hold {text}; got dtype {series.dtype} "
            f"({shown(series.head(3).tolist())}).",
            field=str(series.name),
        )
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"The {where} must hold {text}; got {shown(series.head(3).tolist())}.",
            field=str(series.name),
        ) from exc
    bad = np.isinf(values) | (np.isnan(values) & (not allow_null))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"The {where} must hold finite {text}; row {row} is {shown(values[row])}.",
            field=str(series.name),
        )
    return values


def _design(
    reference: pd.DataFrame, analysis: pd.DataFrame, features: list[str]
) -> tuple[FloatArray, FloatArray, list[bool]]:
    """Feature matrices for the loss model: numbers as they are, text and categories as codes
    of the reference's most frequent values (unseen values are missing)."""
    ref_cols: list[FloatArray] = []
    cur_cols: list[FloatArray] = []
    categorical: list[bool] = []
    for name in features:
        ref, cur = reference[name], analysis[name]
        kind = _kind(ref, f"reference column {name!r}")
        _kind(cur, f"analysis column {name!r}")
        if kind == "number":
            ref_cols.append(ref.to_numpy(dtype=np.float64, na_value=np.nan))
            cur_cols.append(cur.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            top = ref.astype(str).value_counts().index[:_MAX_CATEGORIES]
            codes = {value: float(i) for i, value in enumerate(top)}
            ref_cols.append(ref.astype(str).map(codes).to_numpy(dtype=np.float64))
            cur_cols.append(cur.astype(str).map(codes).to_numpy(dtype=np.float64))
        categorical.append(kind == "category")
    n_ref, n_cur = len(reference), len(analysis)
    return (
        np.column_stack(ref_cols) if ref_cols else np.empty((n_ref, 0)),
        np.column_stack(cur_cols) if cur_cols else np.empty((n_cur, 0)),
        categorical,
    )


def _kind(series: pd.Series, where: str) -> str:
    """``number`` (numbers, booleans) or ``category`` (text, categoricals)."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "number"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("string", "categorical", "empty"):
        return "category"
    if inferred in ("integer", "floating", "mixed-integer-float", "boolean", "decimal"):
        return "number"
    raise InvalidInput(
        f"The {where} holds {inferred} values ({shown(series.head(3).tolist())}); DLE accepts "
        "numeric, boolean, text and categorical features. Convert it, or leave it out of "
        "features=[...].",
        field=str(series.name),
    )


def _bootstrap_fit(
    x: FloatArray, loss: FloatArray, x_new: FloatArray, categorical: list[bool], seed: int
) -> tuple[FloatArray, float]:
    """Each bootstrap model's predictions of ``loss`` on ``x_new`` and the out-of-bag
    dispersion ratio (variance of the loss around its prediction over the prediction squared)."""
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: the fits are small (under a second each), and HistGradientBoosting's
    # thread pool on busy cores took 30 s per fit instead of 0.7 s (measured on 2 shared
    # cores; the same oversubscription demo_loop.ONE_THREAD avoids).
    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit_models(x, loss, x_new, categorical, seed)


def _fit_models(
    x: FloatArray,
    loss: FloatArray,
    x_new: FloatArray,
    categorical: list[bool],
    seed: int,
) -> tuple[FloatArray, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(seed)
    out_of_bag = np.zeros(loss.size)
    counts = np.zeros(loss.size)
    predictions = np.empty((x_new.shape[0], _MODELS))
    for index in range(_MODELS):
        sample = rng.integers(0, loss.size, loss.size)
        unused = np.ones(loss.size, dtype=bool)
        unused[sample] = False
        model = HistGradientBoostingRegressor(
            max_iter=100,
            min_samples_leaf=50,
            early_stopping=False,
            categorical_features=np.array(categorical),
            random_state=seed,
        ).fit(x[sample], loss[sample])
        out_of_bag[unused] += np.maximum(model.predict(x[unused]), 0.0)
        counts[unused] += 1
        predictions[:, index] = np.maximum(model.predict(x_new), 0.0)
    seen = counts > 0
    fitted = out_of_bag[seen] / counts[seen]
    scale = float(np.sum(fitted**2))
    ratio = float(np.sum((loss[seen] - fitted) ** 2)) / scale if scale > 0 else 0.0
    return predictions, ratio
