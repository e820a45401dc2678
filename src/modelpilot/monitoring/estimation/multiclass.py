"""CBPE for multiclass classifiers: the expected per-class confusion counts.

Each class's probability is calibrated one-vs-rest on the labelled reference (isotonic), then
each row is renormalised to sum to 1. From the calibrated matrix ``c`` of a chunk: expected
accuracy is the mean of ``c`` at the predicted class; per class ``k`` the expected true
positives are the sum of ``c[:, k]`` over rows predicted ``k`` and the expected positives the
sum of ``c[:, k]``, which give precision, recall and F1, macro-averaged over the model's
classes; ROC AUC is the macro average of one-vs-rest areas under the expected ROC curves of
the raw class scores. Intervals: the metric on label sets drawn from the calibrated rows.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.estimation.common import (
    CalibratedEstimator,
    FloatArray,
    Rows,
    expected_auc,
    first_true,
    isotonic,
    probabilities,
    quantile_interval,
    rank_auc,
    require,
)

METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")  # the last three macro-averaged
IntArray = NDArray[np.int64]
_SUM_TOLERANCE = 0.01
_UNKNOWN = -2  # a value that is no class of the model


class MulticlassEstimator(CalibratedEstimator):
    """Calibrated class probabilities of the analysis rows, with the reference."""

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        analysis: pd.DataFrame,
        *,
        y_true: str,
        y_proba: Mapping[Any, str] | Sequence[str],
        y_pred: str | None,
        calibrate: bool,
        confidence: float,
        n_simulations: int,
    ) -> MulticlassEstimator:
        """Read both frames; calibrate each class one-vs-rest on the reference, renormalise."""
        columns = _class_columns(reference, y_true, y_proba)
        ref = _Columns.read(reference, y_true, columns, y_pred, True, calibrate)
        cur = _Columns.read(analysis, y_true, columns, y_pred, False, calibrate)
        calibrated = _calibrate(ref, cur) if calibrate else _normalised(cur.proba)
        return cls(ref, cur, calibrated, confidence, n_simulations)

    def estimate(self, metric: str, part: slice, rng: np.random.Generator) -> tuple[float, ...]:
        """The metric of the chunk's expected confusion counts, and its simulated interval."""
        c, score, pred = self.calibrated[part], self.cur.proba[part], self.cur.pred[part]
        cumulative = np.cumsum(c, axis=1)[:, :-1]
        u = rng.random((self.n_sims, c.shape[0]))
        labels = np.zeros(u.shape, dtype=np.int64)
        for j in range(cumulative.shape[1]):  # one class at a time: draws x rows memory only
            labels += u > cumulative[:, j]
        draws = _metric_rows(metric, labels, score, pred)
        return (_expected(metric, c, score, pred), *quantile_interval(draws, self.confidence))

    def realised(self, metric: str, part: slice) -> tuple[float | None, int]:
        """The metric on the chunk's labelled rows."""
        labels = self.cur.labels[part]
        known = labels >= 0
        if not known.any():
            return None, 0
        score, pred = self.cur.proba[part][known], self.cur.pred[part][known]
        return _realised(metric, labels[known], score, pred), int(known.sum())

    def reference_metric(self, metric: str, rows: Rows) -> float | None:
        """The metric on reference ``rows``."""
        ref = self.ref
        return _realised(metric, ref.labels[rows], ref.proba[rows], ref.pred[rows])


def _class_columns(
    reference: pd.DataFrame, y_true: str, y_proba: Mapping[Any, str] | Sequence[str]
) -> dict[Hashable, str]:
    """{class: probability column}; a plain list is in the order of the sorted classes
    (scikit-learn's ``classes_``) found in the reference labels."""
    if isinstance(y_proba, Mapping):
        columns = {k: str(v) for k, v in y_proba.items()}
    else:
        require(reference, [y_true], "reference", " The classes come from the reference labels.")
        classes = sorted(reference[y_true].dropna().unique().tolist())
        if len(classes) != len(y_proba):
            raise InvalidInput(
                f"y_proba lists {len(y_proba)} probability columns but the reference column "
                f"{y_true!r} holds {len(classes)} classes ({shown(classes)}). Pass "
                "y_proba={class: column} to say which column belongs to which class.",
                field="y_proba",
            )
        columns = dict(zip(classes, (str(c) for c in y_proba), strict=True))
    if len(columns) < 2:
        raise InvalidInput(
            f"A multiclass y_proba needs a probability column per class, at least 2; got "
            f"{shown(columns)}. For a binary model pass the positive-class column as a string.",
            field="y_proba",
        )
    return columns


class _Columns:
    """Validated class indices (-1 where unknown), probability matrix and predicted classes."""

    def __init__(self, proba: FloatArray, pred: IntArray, labels: IntArray) -> None:
        self.proba = proba
        self.pred = pred
        self.labels = labels
        self.n = int(pred.size)

    @classmethod
    def read(
        cls,
        frame: pd.DataFrame,
        y_true: str,
        columns: dict[Hashable, str],
        y_pred: str | None,
        labelled: bool,
        calibrate: bool,
    ) -> _Columns:
        role = "reference" if labelled else "analysis"
        needed = [*columns.values()] + ([y_true] if labelled else []) + ([y_pred] if y_pred else [])
        hint = (
            " Pass y_pred=None to predict the most probable class."
            if y_pred and y_pred not in frame.columns
            else ""
        )
        require(frame, needed, role, hint)
        hint = "Pass predict_proba's column of each class."
        proba = np.column_stack(
            [probabilities(frame[c], f"{role} column {c!r}", hint) for c in columns.values()]
        )
        if not calibrate:
            _check_sums(proba, role)
        classes = list(columns)
        if y_pred is None:
            pred = np.asarray(proba.argmax(axis=1), dtype=np.int64)
        else:
            pred = _indices(frame[y_pred], classes, f"{role} column {y_pred!r}", allow_null=False)
        if y_true in frame.columns:
            where = f"{role} column {y_true!r}"
            labels = _indices(frame[y_true], classes, where, allow_null=not labelled)
        else:
            labels = np.full(pred.size, -1, dtype=np.int64)
        if labelled and np.unique(labels).size < 2:
            raise InvalidInput(
                f"The reference column {y_true!r} holds only one class "
                f"({shown(classes[labels[0]])}); expected at least 2 of {shown(classes)}. Use "
                "a reference period in which several classes occur.",
                field=y_true,
            )
        return cls(proba, pred, labels)


def _check_sums(proba: FloatArray, role: str) -> None:
    sums = proba.sum(axis=1)
    row = first_true(np.abs(sums - 1) > _SUM_TOLERANCE)
    if row is not None:
        raise InvalidInput(
            f"The class probabilities of the {role} data must sum to 1 in each row; row {row} "
            f"sums to {sums[row]:.4g}. Pass predict_proba's columns, or calibrate=True to "
            "calibrate unnormalised scores on the reference.",
            field="y_proba",
        )


def _indices(series: pd.Series, classes: list[Hashable], where: str, allow_null: bool) -> IntArray:
    """Each value's position in ``classes`` (-1 for a null); values match by equality or,
    failing that, by their text (a class 1 and a label '1' read from CSV are the same)."""
    lookup: dict[Any, int] = {c: i for i, c in enumerate(classes)}
    lookup.update({str(c): i for i, c in enumerate(classes)})
    try:
        codes, distinct = pd.factorize(series, use_na_sentinel=True)
        uniques: list[Any] = list(distinct)
    except TypeError:  # unhashable values (lists, dicts)
        codes, uniques = np.zeros(len(series), dtype=np.int64), [None]
    found = np.array([_lookup(lookup, u) for u in uniques] + [-1], dtype=np.int64)
    out = np.asarray(found[codes], dtype=np.int64)  # a null's code -1 picks the final -1
    row = first_true(((codes >= 0) & (out == _UNKNOWN)) | ((codes < 0) & (not allow_null)))
    if row is not None:
        raise InvalidInput(
            f"The {where} must hold one of the model's classes {shown(classes)}"
            f"{'' if allow_null else ' with no nulls'}; row {row} is {shown(series.iloc[row])}. "
            "Pass y_proba={class: column} with a column for every class.",
            field=str(series.name),
        )
    return out


def _lookup(lookup: dict[Any, int], value: Any) -> int:
    """The class position of one distinct value, or ``_UNKNOWN``."""
    try:
        found = lookup.get(value)
    except TypeError:  # unhashable value
        return _UNKNOWN
    if found is None and isinstance(value, float) and value.is_integer():
        found = lookup.get(str(int(value)))  # 1.0 from a nullable float column, class '1'
    if found is None:
        found = lookup.get(str(value))
    return _UNKNOWN if found is None else found


def _calibrate(ref: _Columns, cur: _Columns) -> FloatArray:
    """One-vs-rest isotonic calibration per class, each row renormalised to sum to 1."""
    k = ref.proba.shape[1]
    fitted = np.column_stack(
        [
            isotonic(ref.proba[:, j], (ref.labels == j).astype(float), cur.proba[:, j])
            for j in range(k)
        ]
    )
    sums = fitted.sum(axis=1, keepdims=True)
    return np.where(sums > 0, fitted / np.where(sums > 0, sums, 1), _normalised(cur.proba))


def _normalised(proba: FloatArray) -> FloatArray:
    sums = proba.sum(axis=1, keepdims=True)
    uniform = np.full_like(proba, 1 / proba.shape[1])
    return np.where(sums > 0, proba / np.where(sums > 0, sums, 1), uniform)


def _expected(name: str, c: FloatArray, score: FloatArray, pred: IntArray) -> float:
    """The metric of the expected per-class confusion counts (or expected ROC curves)."""
    k = c.shape[1]
    if name == "roc_auc":
        return float(np.mean([expected_auc(c[:, j], score[:, j]) for j in range(k)]))
    if name == "accuracy":
        return float(c[np.arange(c.shape[0]), pred].mean())
    onehot = pred[:, np.newaxis] == np.arange(k)
    tp = (c * onehot).sum(axis=0)
    return float(_per_class(name, tp, onehot.sum(axis=0), c.sum(axis=0)).mean())


def _per_class(name: str, tp: FloatArray, predicted: Any, positives: Any) -> FloatArray:
    """Precision, recall or F1 per class (the last axis) from counts; 0 where undefined."""
    tp = np.asarray(tp, dtype=np.float64)
    base = {"precision": predicted, "recall": positives, "f1": predicted + positives}[name]
    base = np.broadcast_to(np.asarray(base, dtype=np.float64), tp.shape)
    top = 2 * tp if name == "f1" else tp
    return np.asarray(np.divide(top, base, out=np.zeros_like(tp), where=base > 0))


def _metric_rows(name: str, labels: IntArray, score: FloatArray, pred: IntArray) -> FloatArray:
    """The realised metric for each row of a (draws x rows) matrix of class indices."""
    k = score.shape[1]
    if name == "accuracy":
        return np.asarray((labels == pred).mean(axis=1), dtype=np.float64)
    if name == "roc_auc":
        areas = [rank_auc(labels == j, score[:, j]) for j in range(k)]
        return np.asarray(np.mean(areas, axis=0), dtype=np.float64)
    tp = np.column_stack([((labels == j) & (pred == j)).sum(axis=1) for j in range(k)])
    positives = np.column_stack([(labels == j).sum(axis=1) for j in range(k)])
    predicted = np.bincount(pred, minlength=k)
    return np.asarray(_per_class(name, tp, predicted, positives).mean(axis=1))


def _realised(name: str, labels: IntArray, score: FloatArray, pred: IntArray) -> float | None:
    if name == "roc_auc" and np.unique(labels).size < score.shape[1]:
        return None  # one-vs-rest AUC needs every class among the labels
    return float(_metric_rows(name, labels[np.newaxis, :], score, pred)[0])
