"""Model performance without labels: CBPE for classifiers, DLE for regressors.

When labels arrive late or never, the model's own outputs, checked against a labelled
reference, say how well it is doing:

* **Binary classification, CBPE** (:mod:`.estimation.binary`): the calibrated probability of
  the positive class says how often each prediction should be right; summed over a chunk it
  gives the expected confusion matrix, and from it the expected accuracy, precision, recall,
  F1 and ROC AUC (the area under the expected ROC curve).
* **Multiclass classification, CBPE** (:mod:`.estimation.multiclass`): each class's
  probability is calibrated one-vs-rest and the rows renormalised; expected accuracy, macro
  precision, recall and F1, and macro one-vs-rest ROC AUC.
* **Regression, DLE** (:mod:`.estimation.regression`): gradient-boosted trees trained on the
  reference predict each row's absolute and squared error from the features and the
  prediction; expected MAE and RMSE.

Scores are calibrated on the labelled reference (isotonic regression), so a classifier's
estimate holds under covariate shift as long as P(y | score) does not change (no concept
drift); DLE likewise assumes the error given the features does not change. Concept drift is
what :mod:`.concept` watches once labels come.

Uncertainty: ``lower``/``upper`` bracket where the realised metric of the chunk should fall
if those assumptions hold (classifiers: Monte Carlo over labels drawn from the calibrated
probabilities, seeded by ``seed``; regression: a normal interval from the loss models).
Alerts: an estimate outside the reference's realised range for chunks of that size (mean +-
3 standard deviations over reference chunks, or over bootstrap samples when the reference is
shorter than three chunks).

References: NannyML, "Confidence-based Performance Estimation (CBPE)" and "Direct Loss
Estimation (DLE)",
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html;
B. Zadrozny and C. Elkan, "Transforming classifier scores into accurate multiclass
probability estimates", KDD 2002 (isotonic calibration, one-vs-rest).

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

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.estimation import binary, multiclass, regression
from modelpilot.monitoring.estimation.common import TaskEstimator, chunk_table
from modelpilot.monitoring.profile import require_frame

METRICS = binary.METRICS  # binary classification (kept for PERFORMANCE_METRICS)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": binary.METRICS,
    "multiclass": multiclass.METRICS,
    "regression": regression.METRICS,
}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "roc_auc", "regression": "mae"}
TASKS = ("auto", *TASK_METRICS)


def estimate_performance(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    *,
    y_true: str = "target",
    y_proba: str | Mapping[Any, str] | Sequence[str] | None = "proba",
    y_pred: str | None = "pred",
    metric: str | Sequence[str] | None = None,
    task: str = "auto",
    features: Sequence[str] | None = None,
    chunk_size: int = 5000,
    calibrate: bool = True,
    confidence: float = 0.95,
    n_simulations: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Estimate a model's performance per chunk of ``analysis``, without labels.

    The task follows ``y_proba`` unless ``task`` names it: a column name is a binary
    classifier (the positive-class probability), a ``{class: column}`` mapping (or a list
    of columns in the order of the sorted classes) a multiclass classifier, and None a
    regressor (then ``y_pred`` is the numeric prediction and ``features`` the inputs DLE
    learns the errors from, by default every other reference column).

    ``reference`` needs labels (``y_true``) and the model's outputs. Classifiers: unless
    ``y_pred`` is None (then the prediction is ``y_proba >= 0.5``, or the most probable
    class), predicted labels. ``analysis`` needs the same, with labels optional: where some
    rows of a chunk have them, the realised metric on those rows is reported next to the
    estimate. Metrics: binary ``roc_auc`` (default), ``accuracy``, ``f1``, ``precision``,
    ``recall``; multiclass the same, macro-averaged over the classes; regression ``mae``
    (default) and ``rmse``.

    Returns one row per chunk (and metric): ``chunk``, ``start``, ``end`` (row positions,
    end exclusive), ``n_rows``, ``metric``, ``estimated``, ``lower``, ``upper``,
    ``realised`` and ``n_labels`` (nullable), ``lower_threshold``, ``upper_threshold``,
    ``alert``.
    """
    chosen = _task(task, y_proba)
    metrics = _metrics(metric, chosen)
    _check_options(chunk_size, confidence, n_simulations)
    ref = require_frame(reference, "reference")
    cur = require_frame(analysis, "analysis")
    estimator: TaskEstimator
    if chosen == "regression":
        if y_pred is None:
            raise InvalidInput(
                "A regression estimate needs the prediction column; got y_pred=None. Pass "
                "y_pred='<prediction column>'.",
                field="y_pred",
            )
        estimator = regression.RegressionEstimator.fit(
            ref,
            cur,
            y_true=y_true,
            y_pred=y_pred,
            features=features,
            confidence=confidence,
            seed=seed,
        )
    elif chosen == "multiclass":
        columns = cast("Mapping[Any, str] | Sequence[str]", y_proba)  # the form _task checked
        estimator = multiclass.MulticlassEstimator.fit(
            ref,
            cur,
            y_true=y_true,
            y_proba=columns,
            y_pred=y_pred,
            calibrate=calibrate,
            confidence=confidence,
            n_simulations=n_simulations,
        )
    else:
        estimator = binary.BinaryEstimator.fit(
            ref,
            cur,
            y_true=y_true,
            y_proba=str(y_proba),
            y_pred=y_pred,
            calibrate=calibrate,
            confidence=confidence,
            n_simulations=n_simulations,
        )
    return chunk_table(estimator, metrics, chunk_size, np.random.default_rng(seed))


def _task(task: str, y_proba: object) -> str:
    """The task ``task`` names, or the one ``y_proba``'s form implies; InvalidInput when
    they disagree."""
    if task not in TASKS:
        raise InvalidInput(
            f"Unknown task {shown(task)}; expected one of {', '.join(TASKS)}.", field="task"
        )
    if task == "regression":
        return task  # y_proba is not used (its default names a binary column)
    if y_proba is None:
        implied = "regression"
    elif isinstance(y_proba, str):
        implied = "binary"
    elif isinstance(y_proba, Mapping | Sequence):
        implied = "multiclass"
    else:
        raise InvalidInput(
            f"y_proba must be a column name (binary), a {{class: column}} mapping or a list of "
            f"columns (multiclass), or None (regression); got {type(y_proba).__name__}.",
            field="y_proba",
        )
    if task not in ("auto", implied):
        forms = {"binary": "a column name", "multiclass": "a {class: column} mapping"}
        raise InvalidInput(
            f"task={task!r} needs y_proba as {forms[task]}; got {shown(y_proba)}, which "
            f"means {implied}.",
            field="y_proba",
        )
    return implied


def _metrics(metric: str | Sequence[str] | None, task: str) -> list[str]:
    if metric is None:
        return [DEFAULT_METRIC[task]]
    names = [metric] if isinstance(metric, str) else list(metric)
    supported = TASK_METRICS[task]
    unknown = [m for m in names if m not in supported]
    if unknown or not names:
        raise InvalidInput(
            f"Unknown performance metric {shown(unknown or names)}; supported for {task} "
            f"{'classification' if task != 'regression' else 'models'}: {', '.join(supported)}.",
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
