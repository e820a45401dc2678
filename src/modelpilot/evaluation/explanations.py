"""Explanations: permutation importance for any model, SHAP values where asked or built in.

Permutation importance (Breiman 2001; ``sklearn.inspection.permutation_importance``) shuffles
one feature at a time and measures how much the primary metric gets worse: positive means the
model relies on the feature. It works for any object with ``predict``, because the scorer is
this package's metric, not scikit-learn's.

SHAP values are computed only where they are exact and free: xgboost and LightGBM models carry
TreeSHAP (Lundberg et al., 2020) in their own ``predict`` (``pred_contribs`` /
``pred_contrib``), so no ``shap`` package is needed. Values are in the model's raw margin
(log-odds for classifiers) and summarised as the mean absolute contribution per feature. For
any other model the result says why there are none instead of failing, unless ``shap=True``
asks for the shap package (TreeSHAP or a model-agnostic explainer, see ``shap_values``).

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
>>> y = pd.Series(3 * X["a"] + 0.1 * rng.normal(size=300))
>>> ex = explain(LinearRegression().fit(X, y), X, y, "regression", "rmse", seed=0, notes=[])
>>> ex.permutation[0].feature, ex.shap is None
('a', True)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.evaluation.metrics import METRICS, point_value
from modelpilot.evaluation.prediction import Task, add_note, one_line, predict
from modelpilot.evaluation.shap_values import shap_summary


@dataclass(frozen=True)
class FeatureImportance:
    """Mean and standard deviation of one feature's importance over the repeats."""

    feature: str
    importance: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "importance": self.importance, "std": self.std}


@dataclass(frozen=True)
class Explanations:
    """Permutation importance (sorted, largest first) and, where available, mean |SHAP|."""

    metric: str
    permutation: list[FeatureImportance]
    shap: dict[str, float] | None
    shap_method: str | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "permutation": [f.to_dict() for f in self.permutation],
            "shap": None if self.shap is None else dict(self.shap),
            "shap_method": self.shap_method,
            "notes": list(self.notes),
        }


def explain(
    model: object,
    features: pd.DataFrame,
    target: pd.Series,
    task: Task,
    metric: str,
    *,
    seed: int,
    n_repeats: int = 5,
    max_rows: int = 2000,
    notes: list[str],
    use_shap: bool = False,
) -> Explanations:
    """Permutation importance and TreeSHAP summaries on at most ``max_rows`` seeded rows;
    ``use_shap=True`` computes SHAP for any model with the shap package
    (:mod:`modelpilot.evaluation.shap_values`)."""
    rng = np.random.default_rng([seed, 11])
    rows = np.arange(len(features))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    X, y = features.iloc[rows], target.iloc[rows]
    own: list[str] = []
    permutation = _permutation(model, X, y, task, metric, seed, n_repeats, notes)
    if use_shap:
        shap, method = shap_summary(model, X, seed=seed, notes=own)
    else:
        shap, method = _tree_shap(model, X, own)
    return Explanations(metric, permutation, shap, method, own)


class _Unfittable:
    """Stands in for a model without ``fit`` (an ONNX graph, a booster adapter): scikit-learn
    checks that the estimator has ``fit`` but never calls it; ``score`` uses the model."""

    def fit(self, *args: object) -> _Unfittable:
        return self


def _permutation(
    model: object,
    X: pd.DataFrame,
    y: pd.Series,
    task: Task,
    metric: str,
    seed: int,
    n_repeats: int,
    notes: list[str],
) -> list[FeatureImportance]:
    from sklearn.inspection import permutation_importance

    spec = METRICS[metric]
    sign = 1.0 if spec.higher_is_better else -1.0

    def score(_: object, X_: pd.DataFrame, y_: pd.Series) -> float:
        preds = predict(model, X_, y_, task, notes=notes, with_proba=spec.needs_proba)
        value = point_value(spec, preds)
        return sign * value if np.isfinite(value) else 0.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = permutation_importance(
            model if hasattr(model, "fit") else _Unfittable(),
            X,
            y,
            scoring=score,
            n_repeats=n_repeats,
            random_state=seed,
        )
    for item in caught:
        add_note(notes, f"permutation importance warned: {one_line(item.message)}")
    out = [
        FeatureImportance(str(c), float(m), float(s))
        for c, m, s in zip(X.columns, found.importances_mean, found.importances_std, strict=True)
    ]
    return sorted(out, key=lambda f: -f.importance)


def _tree_shap(
    model: object, X: pd.DataFrame, notes: list[str]
) -> tuple[dict[str, float] | None, str | None]:
    module = type(model).__module__.split(".")[0]
    try:
        if module == "lightgbm":
            contrib = np.asarray(model.predict(X, pred_contrib=True))  # type: ignore[attr-defined]
            method = "LightGBM built-in TreeSHAP (pred_contrib), raw margin"
        elif module == "xgboost":
            import xgboost

            booster = model.get_booster()  # type: ignore[attr-defined]
            matrix = xgboost.DMatrix(X, enable_categorical=True)
            contrib = np.asarray(booster.predict(matrix, pred_contribs=True))
            method = "xgboost built-in TreeSHAP (pred_contribs), raw margin"
        else:
            notes.append(
                f"SHAP values not computed: {type(model).__name__} has no built-in TreeSHAP "
                "(only xgboost and LightGBM models do; evaluate with shap=True to use the "
                "shap package)."
            )
            return None, None
    except Exception as exc:  # a failing explainer must not fail the evaluation
        notes.append(f"SHAP values not computed: {type(exc).__name__}: {one_line(exc)}")
        return None, None
    n_features = X.shape[1]
    # (n, F+1), (n, K*(F+1)) or (n, K, F+1); the last of each F+1 block is the bias term
    blocks = contrib.reshape(len(X), -1, n_features + 1)[:, :, :n_features]
    mean_abs = np.abs(blocks).mean(axis=(0, 1))
    return {str(c): float(v) for c, v in zip(X.columns, mean_abs, strict=True)}, method
