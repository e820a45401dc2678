"""SHAP explanations for any model, through the ``shap`` package, bounded in rows and time.

Tree models (scikit-learn decision trees, random forests, extra trees, gradient boosting;
xgboost; LightGBM) get exact TreeSHAP (Lundberg et al., "From local explanations to global
understanding with explainable AI for trees", Nature MI 2020) through ``shap.TreeExplainer``.
Any other model, or a tree model TreeExplainer refuses (a pipeline, categorical inputs), gets
the model-agnostic permutation explainer (``shap.explainers.Permutation``) over its
probabilities (or predictions), with 50 background rows and 5 antithetic permutations per
row, explaining rows in chunks until
100 rows (``max_rows`` for TreeSHAP) or ``max_seconds`` seconds are spent.

The summary is the mean absolute SHAP value per feature over explained rows (and classes),
next to permutation importance in :mod:`modelpilot.evaluation.explanations`.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput
from modelpilot.evaluation.prediction import one_line

_TREE_MODULES = (
    "sklearn.tree",
    "sklearn.ensemble._forest",
    "sklearn.ensemble._gb",
    "xgboost",
    "lightgbm",
)
_BACKGROUND = 50
_AGNOSTIC_ROWS = 100
_PERMUTATIONS = 5  # each costs 2F+1 masked evaluations per row (forward and back)
_CHUNK = 25


def import_shap() -> Any:
    """The ``shap`` module, or a clear error naming the extra that installs it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba and tqdm warn on import in some setups
            import shap
    except ImportError as exc:
        raise InvalidInput(
            "SHAP explanations need the shap package, which is not installed. Install it "
            "with: pip install 'modelpilot[governance]' (or evaluate with shap=False).",
            field="shap",
        ) from exc
    return shap


def is_tree_model(model: object) -> bool:
    """Whether ``shap.TreeExplainer`` is tried first for ``model``."""
    module = type(model).__module__
    return any(module == m or module.startswith(m + ".") for m in _TREE_MODULES)


def shap_summary(
    model: object,
    X: pd.DataFrame,
    *,
    seed: int,
    notes: list[str],
    max_rows: int = 200,
    max_seconds: float = 30.0,
) -> tuple[dict[str, float] | None, str | None]:
    """Mean |SHAP| per feature and the method's description; ``(None, None)`` with a note
    when no explainer works for the model (a failing explainer never fails the evaluation)."""
    shap = import_shap()
    rng = np.random.default_rng([seed, 19])
    rows = np.arange(len(X))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    sample = X.iloc[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's own deprecation and tqdm warnings
        if is_tree_model(model):
            try:
                values = np.asarray(shap.TreeExplainer(model).shap_values(sample))
                return _mean_abs(values, X.columns), "shap TreeExplainer (exact TreeSHAP)"
            except Exception as exc:  # fall back to the model-agnostic explainer
                notes.append(f"TreeSHAP refused the model ({one_line(exc)}); used permutation")
        try:
            sample = sample.iloc[:_AGNOSTIC_ROWS]  # about 50 ms a row: keep it to seconds
            return _permutation_shap(shap, model, X, sample, rng, notes, max_seconds)
        except Exception as exc:
            notes.append(f"SHAP values not computed: {type(exc).__name__}: {one_line(exc)}")
            return None, None


def _permutation_shap(
    shap: Any,
    model: object,
    X: pd.DataFrame,
    sample: pd.DataFrame,
    rng: np.random.Generator,
    notes: list[str],
    max_seconds: float,
) -> tuple[dict[str, float], str]:
    columns, dtypes = list(X.columns), X.dtypes.to_dict()
    proba = getattr(model, "predict_proba", None)
    call = proba if callable(proba) else model.predict  # type: ignore[attr-defined]

    def f(values: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(values, columns=columns).astype(dtypes)
        return np.asarray(call(frame), dtype=np.float64)

    size = min(_BACKGROUND, len(X))
    background = X.iloc[np.sort(rng.choice(len(X), size=size, replace=False))]
    explainer = shap.explainers.Permutation(f, shap.maskers.Independent(background, size))
    deadline = time.monotonic() + max_seconds
    parts: list[np.ndarray] = []
    for start in range(0, len(sample), _CHUNK):
        if parts and time.monotonic() > deadline:
            break
        chunk = sample.iloc[start : start + _CHUNK]
        evals = _PERMUTATIONS * (2 * len(columns) + 1)
        parts.append(np.asarray(explainer(chunk, max_evals=evals, silent=True).values))
    values = np.concatenate(parts)
    explained = values.shape[0]
    if explained < len(sample):
        notes.append(f"SHAP: {explained} of {len(sample)} rows explained in {max_seconds:g} s")
    output = "probabilities" if callable(proba) else "predictions"
    method = f"shap permutation explainer on {output}, {explained} rows, {size} background rows"
    return _mean_abs(values, columns), method


def _mean_abs(values: np.ndarray, columns: Any) -> dict[str, float]:
    """(n, F), (n, F, K) or (K, n, F) -> mean |value| per feature."""
    columns = list(columns)
    if values.ndim == 3:
        axes = (0, 2) if values.shape[1] == len(columns) else (0, 1)
        mean = np.abs(values).mean(axis=axes)
    else:
        mean = np.abs(values).mean(axis=0)
    return {str(c): float(v) for c, v in zip(columns, mean, strict=True)}
