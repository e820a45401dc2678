"""Calling the model: feature columns, the task, predictions and probabilities.

Every call into a model goes through :func:`call_model`, which records the warnings the model
emits as notes on the evaluation instead of letting them escape: a scikit-learn
``UserWarning`` about feature names is worth reading in a report, not worth crashing a CI job
that runs with warnings as errors.

Class labels are encoded once, here, against the model's ``classes_`` (scikit-learn's order, so
column ``k`` of ``predict_proba`` is class ``k``); every metric downstream works on integer
codes and never sees the original labels.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> rng = np.random.default_rng(0)
>>> data = pd.DataFrame({"x": rng.normal(size=200)})
>>> data["y"] = np.where(data["x"] + rng.normal(size=200) > 0, "yes", "no")
>>> model = LogisticRegression().fit(data[["x"]], data["y"])
>>> infer_task(data["y"], model)
'binary'
>>> preds = predict(model, data[["x"]], data["y"], "binary", notes=[])
>>> preds.classes, preds.proba.shape
(('no', 'yes'), (200, 2))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
ModelKind = Literal["classifier", "regressor"]

# An integer-valued target with at most this many distinct values reads as classes when the
# model gives no hint (scikit-learn's type_of_target calls any integer target multiclass;
# counts with hundreds of values are far more often a regression target).
MAX_INTEGER_CLASSES = 20


def one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters.

    >>> one_line("Input X contains NaN.\\nUse an imputer.", limit=30)
    'Input X contains NaN. Use an i…'
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def add_note(notes: list[str], text: str) -> None:
    """Append a note once (models repeat the same warning on every call)."""
    if text not in notes:
        notes.append(text)


def call_model(
    method: Callable[[pd.DataFrame], Any], features: pd.DataFrame, notes: list[str], role: str
) -> Any:
    """Call ``method(features)`` and turn the warnings it emits into notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = method(features)
    for item in caught:
        name = getattr(method, "__name__", "call")
        add_note(
            notes, f"{role}.{name} warned ({item.category.__name__}): {one_line(item.message)}"
        )
    return out


def model_kind(model: object) -> ModelKind | None:
    """What the model says it is: scikit-learn's estimator tags, then ``classes_``."""
    try:
        from sklearn.base import is_classifier, is_regressor

        if is_classifier(model):
            return "classifier"
        if is_regressor(model):
            return "regressor"
    except (AttributeError, TypeError, ValueError):
        pass  # not a scikit-learn estimator: no tags to read
    if hasattr(model, "classes_") or hasattr(model, "predict_proba"):
        return "classifier"
    return None


def infer_task(target: pd.Series, model: object | None = None) -> Task:
    """The task for ``target``: the model's own kind first, then the target's values.

    A classifier gives binary or multiclass by its number of classes; a regressor gives
    regression. With no hint, a non-numeric or boolean target is classification, a numeric one
    with two values binary, integer-valued with at most 20 values multiclass, else regression.

    >>> infer_task(pd.Series([0.5, 1.25, 3.0]))
    'regression'
    >>> infer_task(pd.Series(["a", "b", "c", "a"]))
    'multiclass'
    """
    kind = model_kind(model) if model is not None else None
    if kind == "regressor":
        return "regression"
    if kind == "classifier":
        classes = getattr(model, "classes_", None)
        n_classes = len(classes) if classes is not None else target.nunique(dropna=True)
        return "binary" if n_classes <= 2 else "multiclass"
    values = target.dropna()
    n_unique = values.nunique()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "binary" if n_unique <= 2 else "multiclass"
    if n_unique <= 2:
        return "binary"
    numbers = values.to_numpy(dtype=float)
    if np.all(np.mod(numbers, 1) == 0) and n_unique <= MAX_INTEGER_CLASSES:
        return "multiclass"
    return "regression"


def feature_columns(model: object, data: pd.DataFrame, exclude: Sequence[str]) -> list[str]:
    """The model's ``feature_names_in_`` if it has them, else every column not in ``exclude``."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return [str(c) for c in data.columns if c not in set(exclude)]
    wanted = [str(n) for n in names]
    missing = [n for n in wanted if n not in data.columns]
    if missing:
        raise InvalidInput(
            f"The model was fitted on columns the evaluation data lacks: {shown(missing)}. "
            f"Data columns: {shown(list(map(str, data.columns)))}. "
            "Evaluate on data with the training columns.",
            field="data",
        )
    return wanted


@dataclass(frozen=True)
class Predictions:
    """One model's outputs on the evaluation rows, encoded for metrics.

    For classification ``y`` and ``pred`` are class codes (indices into ``classes``) and
    ``proba`` has one column per class, or is ``None`` when the model has no
    ``predict_proba``. For regression they are floats and ``classes`` is empty.
    """

    task: Task
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None
    classes: tuple[Any, ...]
    # statistics shared between metrics (see metrics._shared); never part of equality
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def score(self) -> np.ndarray | None:
        """Probability of the positive class (``classes[1]``) for binary tasks."""
        if self.proba is None or self.task != "binary":
            return None
        return self.proba[:, 1]

    def take(self, rows: np.ndarray) -> Predictions:
        """The same predictions restricted to ``rows`` (a slice or a group)."""
        proba = None if self.proba is None else self.proba[rows]
        return Predictions(self.task, self.y[rows], self.pred[rows], proba, self.classes)


def predict(
    model: object,
    features: pd.DataFrame,
    target: pd.Series,
    task: Task,
    *,
    notes: list[str],
    role: str = "model",
    with_proba: bool = True,
) -> Predictions:
    """Run the model on ``features`` and encode its outputs against ``target``.

    ``with_proba=False`` skips ``predict_proba`` when no metric at hand needs it.
    """
    raw = np.asarray(call_model(model.predict, features, notes, role))  # type: ignore[attr-defined]
    if raw.shape[0] != len(features):
        raise InvalidInput(
            f"{role}.predict returned {raw.shape[0]} rows for {len(features)} input rows. "
            "Pass a model whose predict returns one prediction per row.",
            field=role,
        )
    if task == "regression":
        return _regression(raw.reshape(len(features), -1)[:, 0], target, role)
    proba = None
    if with_proba and hasattr(model, "predict_proba"):
        proba = np.asarray(call_model(model.predict_proba, features, notes, role), dtype=float)
    classes = _classes(model, target, raw, proba, role)
    if task == "binary" and len(classes) > 2:
        raise InvalidInput(
            f"Task 'binary' but {role} has {len(classes)} classes {shown(list(classes))}. "
            "Pass task='multiclass' or leave task out to infer it.",
            field="task",
        )
    y = _encode(target.to_numpy(), classes, "target", role)
    pred = _encode(raw, classes, f"{role}.predict output", role)
    if proba is not None:
        proba = _check_proba(proba, len(classes), len(features), role)
    return Predictions(task, y, pred, proba, classes)


def _regression(raw: np.ndarray, target: pd.Series, role: str) -> Predictions:
    try:
        pred = raw.astype(float)
        y = target.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Task 'regression' needs numeric targets and predictions; got target dtype "
            f"{target.dtype} and {role} output dtype {raw.dtype}. Pass task='binary' or "
            "'multiclass' for labels.",
            field="task",
        ) from exc
    if not np.all(np.isfinite(pred)):
        bad = int(np.flatnonzero(~np.isfinite(pred))[0])
        raise InvalidInput(
            f"{role}.predict returned a non-finite value at row {bad}: {shown(pred[bad])}. "
            "Check the model and the features at that row.",
            field=role,
        )
    return Predictions("regression", y, pred, None, ())


def _classes(
    model: object, target: pd.Series, raw: np.ndarray, proba: np.ndarray | None, role: str
) -> tuple[Any, ...]:
    declared = getattr(model, "classes_", None)
    if declared is not None:
        return tuple(np.asarray(declared).tolist())
    seen = pd.unique(pd.Series(np.concatenate([target.to_numpy(), raw])).dropna())
    classes = tuple(sorted(seen.tolist()))
    if proba is not None and proba.ndim == 2 and proba.shape[1] != len(classes):
        raise InvalidInput(
            f"{role} has no classes_ and predict_proba gives {proba.shape[1]} columns, but the "
            f"target and predictions hold {len(classes)} labels {shown(list(classes))}. "
            "Give the model a classes_ attribute naming the predict_proba columns.",
            field=role,
        )
    return classes


def _encode(values: np.ndarray, classes: tuple[Any, ...], what: str, role: str) -> np.ndarray:
    codes = pd.Index(list(classes)).get_indexer(pd.Series(values))
    if np.any(codes < 0):
        bad = values[int(np.flatnonzero(codes < 0)[0])]
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise InvalidInput(
            f"The {what} holds the label {shown(bad)}, which {role} does not know; its classes "
            f"are {shown(list(classes))}. Evaluate on labels the model was trained with.",
            field="target" if what == "target" else role,
        )
    return cast(np.ndarray, codes.astype(np.int64))


def _check_proba(proba: np.ndarray, n_classes: int, n_rows: int, role: str) -> np.ndarray:
    if proba.ndim == 1 and n_classes == 2:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.shape != (n_rows, n_classes):
        raise InvalidInput(
            f"{role}.predict_proba returned shape {proba.shape}; expected ({n_rows}, "
            f"{n_classes}): one column per class. Check the model's predict_proba.",
            field=role,
        )
    if not np.all(np.isfinite(proba)):
        raise InvalidInput(
            f"{role}.predict_proba returned non-finite probabilities. Check the model.",
            field=role,
        )
    return proba
