"""Distillation: a smaller student trained on its teacher's soft predictions.

The student keeps the teacher's preprocessing (the fitted steps of a scikit-learn pipeline
before its final estimator, copied as they are) and replaces only the final estimator, so it
takes the same columns and returns the same classes. It learns from what the teacher says,
not from the labels: probabilities for a classifier, predictions for a regressor, over the
training data plus as many perturbed rows (numbers jittered within their column's range,
categories resampled), which show the student the teacher's answer between training points.

A classifier is fitted on soft targets by weighting: each row appears once per class with
that class as its label and the teacher's probability as its weight, so the weighted log loss
the student minimises is the cross-entropy to the teacher's distribution (Hinton, Vinyals and
Dean, "Distilling the Knowledge in a Neural Network", 2015, at temperature 1). Any scikit-learn
classifier that takes ``sample_weight`` learns this way, and the result is a plain scikit-learn
model: the ``sklearn`` flavor serves it, no new code to trust.

Student kinds, cheapest first: ``linear`` (logistic or ridge regression after median
imputation with missing-value indicators and scaling) and ``hgb`` (HistGradientBoosting with
at most 50 trees of 15 leaves, half the teacher's trees when it has fewer than 100). ``auto``
fits both and keeps the cheapest whose fidelity on held-out perturbed rows is close to the
best: class agreement within 0.5 points, or for a regressor a mean relative difference
within 10%.

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, np.nan], "plan": ["a", "b", "a", None]})
>>> jittered = perturb(frame, 6, seed=0)
>>> len(jittered), bool(jittered["x"].dropna().between(0.0, 2.0).all())
(6, True)
>>> set(jittered["plan"].dropna()) <= {"a", "b"}
True
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput
from modelpilot.models import LoadedModel
from modelpilot.optimization import measure

STUDENTS = ("auto", "linear", "hgb")
_COST_ORDER = ("linear", "hgb")
_MAX_TREES = 50
_MAX_LEAVES = 15
_JITTER = 0.1  # noise standard deviation, as a share of the column's standard deviation
_RESAMPLE = 0.3  # share of category cells drawn again from the column's values
_MAX_ROWS = 100_000  # training rows (data + perturbed) before the per-class repetition
_VALIDATION_ROWS = 2_000
_AGREEMENT_SLACK = 0.005
_REGRESSION_SLACK = 1.1


@dataclass(frozen=True)
class Student:
    """A fitted student, its kind, a one-line summary and the held-out fidelity of every kind
    that was fitted (what ``auto`` chose by)."""

    model: Any
    kind: str
    summary: str
    validation: dict[str, measure.Fidelity] = field(default_factory=dict)


def check_student(kind: str) -> str:
    """The student kind, or InvalidInput listing the kinds.

    >>> check_student("hgb")
    'hgb'
    >>> check_student("tree")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Unknown student kind 'tree'. Choose one of: auto, linear, hgb.
    """
    if kind not in STUDENTS:
        raise InvalidInput(
            f"Unknown student kind {kind!r}. Choose one of: {', '.join(STUDENTS)}.",
            field="student",
        )
    return kind


def perturb(frame: pd.DataFrame, rows: int, *, seed: int) -> pd.DataFrame:
    """``rows`` rows drawn from ``frame`` with numbers jittered and categories resampled.

    Numeric columns get Gaussian noise of a tenth of their standard deviation, clipped to the
    column's observed range (integers rounded, missing values kept); other columns (text,
    booleans) have about a third of their cells replaced by a random value of the column,
    missing values included. Datetimes are kept as drawn.
    """
    rng = np.random.default_rng(seed)
    drawn = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    columns = {name: _perturb_column(frame[name], drawn[name], rng) for name in frame.columns}
    return pd.DataFrame(columns, index=pd.RangeIndex(rows))


def _perturb_column(source: pd.Series, drawn: pd.Series, rng: np.random.Generator) -> Any:
    kind = source.dtype.kind
    if kind in "iuf":
        observed = source.to_numpy(dtype=float)
        observed = observed[np.isfinite(observed)]
        if observed.size == 0:
            return drawn.to_numpy()
        values = drawn.to_numpy(dtype=float)
        noise = rng.normal(0.0, _JITTER * float(observed.std()) or 0.0, len(values))
        jittered = np.clip(values + noise, observed.min(), observed.max())
        return np.rint(jittered).astype(source.to_numpy().dtype) if kind in "iu" else jittered
    if kind == "M":
        return drawn.to_numpy()
    replace = rng.random(len(drawn)) < _RESAMPLE
    pool = source.to_numpy(dtype=object)
    values = drawn.to_numpy(dtype=object if kind != "b" else bool).copy()
    values[replace] = pool[rng.integers(0, len(pool), int(replace.sum()))]
    return values


def distill(
    model: LoadedModel, inputs: pd.DataFrame, *, kind: str = "auto", seed: int = 0
) -> Student:
    """Fit a ``kind`` student of ``model`` on ``inputs`` (prepared rows) and perturbed rows."""
    check_student(kind)
    if model.flavor not in ("sklearn", "xgboost", "lightgbm"):
        raise InvalidInput(
            f"Cannot distil {model.display_name}: it is a {model.flavor} model. The distilled "
            "target takes scikit-learn, XGBoost and LightGBM models.",
            field="model",
        )
    if model.signature.input_kind != "columns":
        raise InvalidInput(
            f"Cannot distil {model.display_name}: it takes a tensor; the distilled target "
            "takes models with named columns.",
            field="model",
        )
    is_classifier = model.signature.is_classifier
    pre, final = _split(model.predictor)
    half = _MAX_ROWS // 2
    base = inputs.sample(n=half, random_state=seed) if len(inputs) > half else inputs
    train = pd.concat([base, perturb(inputs, len(base), seed=seed)], ignore_index=True)
    valid = perturb(inputs, min(len(inputs), _VALIDATION_ROWS), seed=seed + 1)
    targets = measure.outputs(model.predictor, train, is_classifier)
    reference = measure.outputs(model.predictor, valid, is_classifier)
    features = _transform(pre, train)
    kinds = _COST_ORDER if kind == "auto" else (kind,)
    fitted: dict[str, Any] = {}
    validation: dict[str, measure.Fidelity] = {}
    for name in kinds:
        if name == "hgb" and _is_sparse(features):
            if kind == "hgb":
                raise InvalidInput(
                    f"Cannot fit an hgb student of {model.display_name}: its preprocessing "
                    "returns a sparse matrix, which HistGradientBoosting does not take. Use "
                    "student='linear' (CLI: --student linear).",
                    field="student",
                )
            continue
        estimator = _estimator(name, final, is_classifier, _is_sparse(features), seed)
        estimator = _encoding_text(estimator, name, features)
        try:
            student = _assemble(pre, _fit(estimator, features, targets, model.classes))
        except (ValueError, TypeError) as exc:  # scikit-learn refusing these features
            raise InvalidInput(
                f"Cannot fit a {name} student of {model.display_name}: scikit-learn refused "
                f"its features ({type(exc).__name__}: {str(exc)[:300]}). Try the other "
                "student (--student linear or hgb); nothing was registered.",
                field="student",
            ) from exc
        fitted[name] = student
        output = measure.outputs(student, valid, is_classifier)
        validation[name] = measure.compare(reference, output, is_classifier=is_classifier)
    chosen = _choose(validation, is_classifier)
    return Student(fitted[chosen], chosen, _summary(chosen, fitted[chosen]), validation)


def _split(native: Any) -> tuple[list[tuple[str, Any]], Any]:
    """The teacher's fitted preprocessing steps and its final estimator."""
    from sklearn.pipeline import Pipeline

    if isinstance(native, Pipeline):
        return list(native.steps[:-1]), native.steps[-1][1]
    return [], native


def _transform(pre: list[tuple[str, Any]], frame: pd.DataFrame) -> Any:
    out: Any = frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, step in pre:
            if step is None or step == "passthrough":
                continue
            out = step.transform(out)
    return out


def _is_sparse(features: Any) -> bool:
    import scipy.sparse

    return bool(scipy.sparse.issparse(features))


def _estimator(name: str, final: Any, is_classifier: bool, sparse: bool, seed: int) -> Any:
    if name == "linear":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        linear = LogisticRegression(max_iter=2000) if is_classifier else Ridge(alpha=1e-3)
        return Pipeline(
            [
                ("impute", SimpleImputer(add_indicator=True, keep_empty_features=True)),
                ("scale", StandardScaler(with_mean=not sparse)),
                ("linear", linear),
            ]
        )
    return _hgb(final, is_classifier, seed)


def _text_columns(features: Any) -> list[str]:
    """Columns the student would get as text or categories (a teacher without preprocessing
    that takes them itself, as a HistGradientBoosting with native categories does)."""
    if not isinstance(features, pd.DataFrame):
        return []
    return [str(c) for c, dtype in features.dtypes.items() if dtype.kind not in "biufc"]


def _encoding_text(estimator: Any, name: str, features: Any) -> Any:
    """``estimator`` behind an encoder of the text columns in ``features``, if any: one-hot
    for the linear student (its imputer and scaler follow), ordinal codes marked categorical
    for the hgb student (missing and unseen values as NaN, which it routes like missing).

    >>> frame = pd.DataFrame({"x": [1.0, 2.0], "plan": ["a", "b"]})
    >>> student = _encoding_text(_hgb(None, True, 0), "hgb", frame)
    >>> [step for step, _ in student.steps], list(student[-1].categorical_features)
    (['encode', 'hgb'], [False, True])
    """
    text = _text_columns(features)
    if not text:
        return estimator
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    numbers = [str(c) for c in features.columns if str(c) not in text]
    if name == "linear":
        encoder: Any = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    else:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
    front = ColumnTransformer(
        [("numbers", "passthrough", numbers), ("text", encoder, text)],
        verbose_feature_names_out=False,
    )
    if name == "linear":  # one flat pipeline: the fit routes sample weights by the last step
        return Pipeline([("encode", front), *estimator.steps])
    # (a column of more categories than HistGradientBoosting's bins stays ordinal numbers)
    cardinality = features[text].nunique()
    estimator.set_params(
        categorical_features=[False] * len(numbers)
        + [bool(cardinality[c] < estimator.max_bins) for c in text]
    )
    return Pipeline([("encode", front), ("hgb", estimator)])


def _hgb(final: Any, is_classifier: bool, seed: int) -> Any:
    """A smaller HistGradientBoosting; a HistGradientBoosting teacher's other settings
    (categorical features, interaction and monotonic constraints) carry over."""
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    kind = HistGradientBoostingClassifier if is_classifier else HistGradientBoostingRegressor
    trees = tree_count(_trees_of(final))
    leaves = min(_MAX_LEAVES, getattr(final, "max_leaf_nodes", None) or _MAX_LEAVES)
    settings = {
        "max_iter": trees,
        "max_leaf_nodes": leaves,
        "learning_rate": 0.2,
        "early_stopping": False,
        "random_state": seed,
        "loss": "log_loss" if is_classifier else "squared_error",
    }
    if isinstance(final, kind):
        extra = {"class_weight": None} if is_classifier else {}
        return clone(final).set_params(**settings, **extra)
    return kind(**settings)


def _trees_of(final: Any) -> int:
    """Trees (boosting iterations) of a tree-ensemble teacher; 0 for anything else."""
    from sklearn.ensemble import BaseEnsemble
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )

    if isinstance(final, BaseHistGradientBoosting):
        return int(final.n_iter_)
    if isinstance(final, BaseEnsemble):
        return len(final.estimators_)
    return 0


def _fit(estimator: Any, features: Any, targets: np.ndarray, classes: list[Any] | None) -> Any:
    """Regressors fit the teacher's predictions; classifiers its probabilities, by weight."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if classes is None:
            return estimator.fit(features, targets)
        rows = targets.shape[0]
        index = np.tile(np.arange(rows), len(classes))
        labels = np.repeat(np.asarray(classes, dtype=object), rows)
        weights = targets.T.reshape(-1)
        repeated = features.iloc[index] if isinstance(features, pd.DataFrame) else features[index]
        fit_labels = labels.astype(np.asarray(classes).dtype)
        return estimator.fit(repeated, fit_labels, **_weight_argument(estimator, weights))


def _weight_argument(estimator: Any, weights: np.ndarray) -> dict[str, np.ndarray]:
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return {f"{estimator.steps[-1][0]}__sample_weight": weights}
    return {"sample_weight": weights}


def _assemble(pre: list[tuple[str, Any]], student: Any) -> Any:
    if not pre:
        return student
    from sklearn.pipeline import Pipeline

    return Pipeline([*copy.deepcopy(pre), ("student", student)])


def _choose(validation: dict[str, measure.Fidelity], is_classifier: bool) -> str:
    """The cheapest kind whose held-out fidelity is close to the best one's."""
    if is_classifier:
        best = max(v.agreement or 0.0 for v in validation.values())
        close = [
            k for k, v in validation.items() if (v.agreement or 0.0) >= best - _AGREEMENT_SLACK
        ]
    else:
        best = min(v.mean_abs_proba_diff for v in validation.values())
        close = [
            k for k, v in validation.items() if v.mean_abs_proba_diff <= best * _REGRESSION_SLACK
        ]
    return next(k for k in _COST_ORDER if k in close)


def _summary(kind: str, student: Any) -> str:
    final = student
    while hasattr(final, "steps"):  # the teacher's pipeline, then the linear student's own
        final = final.steps[-1][1]
    if kind == "hgb":
        return f"hgb student: {final.n_iter_} trees of <= {final.max_leaf_nodes} leaves"
    coef = np.asarray(final.coef_)
    return f"linear student: {type(final).__name__} on {coef.shape[-1]} features"


def tree_count(teacher_trees: int) -> int:
    """Trees of an hgb student for a teacher with ``teacher_trees`` trees (0: unknown).

    >>> tree_count(0), tree_count(30), tree_count(400)
    (50, 15, 50)
    """
    return _MAX_TREES if not teacher_trees else max(5, min(_MAX_TREES, teacher_trees // 2))


__all__ = ["STUDENTS", "Student", "check_student", "distill", "perturb", "tree_count"]
