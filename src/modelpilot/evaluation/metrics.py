"""Metrics for each task, written once for point values and bootstrap resamples alike.

Every metric takes :class:`~modelpilot.evaluation.prediction.Predictions` and a weight matrix
``w`` of shape ``(B, n)`` and returns ``B`` values: row ``b`` weights each evaluation row by how
often resample ``b`` drew it. The point value is the same function with one row of ones, so
point values and intervals can never disagree on a definition, and a thousand resamples cost
a few matrix products instead of a thousand Python calls.

Definitions follow scikit-learn (the tests check them against it): ties in ROC AUC count one
half, average precision is the step-wise sum ``Σ (Rₖ − Rₖ₋₁) Pₖ``, precision/recall/F1 of the
positive class ``classes[1]`` are 0 when undefined, log loss clips probabilities to
``[ε, 1 − ε]`` with float64's ε, macro averages skip classes absent from both labels and
predictions (F1) or from the labels (balanced accuracy, one-vs-rest AUC).

A value that is undefined for a resample (AUC with one class present) is NaN there.

>>> import numpy as np
>>> from modelpilot.evaluation.prediction import Predictions
>>> p = Predictions("binary", np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]),
...                 np.array([[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]]), (0, 1))
>>> round(point_value(METRICS["roc_auc"], p), 4), round(point_value(METRICS["accuracy"], p), 4)
(1.0, 0.75)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modelpilot.evaluation.prediction import Predictions, Task

MetricFn = Callable[[Predictions, np.ndarray], np.ndarray]
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class MetricSpec:
    """A named metric: the tasks it applies to, its direction and its weighted form."""

    name: str
    tasks: frozenset[Task]
    higher_is_better: bool
    needs_proba: bool
    fn: MetricFn
    description: str


def point_value(spec: MetricSpec, preds: Predictions) -> float:
    """The metric on the rows as they are (NaN where undefined)."""
    return float(spec.fn(preds, np.ones((1, preds.n)))[0])


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = np.nan) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _wmean(w: np.ndarray, values: np.ndarray) -> np.ndarray:
    return _ratio(w @ values.astype(float), w.sum(axis=1))


# --- binary ---------------------------------------------------------------------------------


def _counts(p: Predictions, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, pred = p.y == 1, p.pred == 1
    counts = w @ np.column_stack([y & pred, ~y & pred, y & ~pred]).astype(float)  # one pass
    return counts[:, 0], counts[:, 1], counts[:, 2]


def _precision(p: Predictions, w: np.ndarray) -> np.ndarray:
    tp, fp, _ = _counts(p, w)
    return _ratio(tp, tp + fp, 0.0)


def _recall(p: Predictions, w: np.ndarray) -> np.ndarray:
    tp, _, fn = _counts(p, w)
    return _ratio(tp, tp + fn, 0.0)


def _f1(p: Predictions, w: np.ndarray) -> np.ndarray:
    tp, fp, fn = _counts(p, w)
    return _ratio(2 * tp, 2 * tp + fp + fn, 0.0)


def _tie_groups(score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ascending sort order, and for each sorted position the first and one-past-last
    position of its run of equal scores (ties share a threshold)."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    new = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(new)
    stops = np.r_[starts[1:], s.size]
    group = np.cumsum(new) - 1
    return order, starts[group], stops[group]


def _cumulative(w: np.ndarray) -> np.ndarray:
    """Row-wise running sums with a leading 0 column: ``out[:, k] = w[:, :k].sum(1)``."""
    out = np.zeros((w.shape[0], w.shape[1] + 1))
    np.cumsum(w, axis=1, out=out[:, 1:])
    return out


def weighted_auc(y01: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC per weight row: P(score₊ > score₋) + ½ P(tie), over weighted pairs.

    Each positive at sorted position i, in a run of ties [a, b), beats the negative weight
    below a and half of the negative weight inside the run: ½ (N(a) + N(b)) with N the
    running negative weight. Running sums and gathers only (no per-group reductions),
    so B resamples cost a few passes over the ``(B, n)`` matrix.
    """
    order, first, stop = _tie_groups(score)
    is_pos = y01[order] == 1
    pos = np.flatnonzero(is_pos)
    negatives_before = np.r_[0, np.cumsum(~is_pos)]
    neg_cum = _cumulative(w[:, order[~is_pos]])
    w_pos = w[:, order[pos]]
    beaten = neg_cum[:, negatives_before[first[pos]]] + neg_cum[:, negatives_before[stop[pos]]]
    num = 0.5 * np.sum(w_pos * beaten, axis=1)
    return _ratio(num, w_pos.sum(axis=1) * neg_cum[:, -1])


def _roc_auc(p: Predictions, w: np.ndarray) -> np.ndarray:
    assert p.score is not None  # needs_proba guarantees it
    return weighted_auc((p.y == 1).astype(float), p.score, w)


def _average_precision(p: Predictions, w: np.ndarray) -> np.ndarray:
    """Σ over descending thresholds of ΔTP/P × precision, ties forming one threshold."""
    assert p.score is not None
    order, _, stop = _tie_groups(-p.score)
    is_pos = p.y[order] == 1
    ends = np.unique(stop)  # one past the last position of each threshold's run
    pos_cum = _cumulative(w[:, order[is_pos]])
    neg_cum = _cumulative(w[:, order[~is_pos]])
    tp = pos_cum[:, np.r_[0, np.cumsum(is_pos)][ends]]
    fp = neg_cum[:, np.r_[0, np.cumsum(~is_pos)][ends]]
    precision = _ratio(tp, tp + fp, 0.0)
    step = np.diff(tp, axis=1, prepend=0.0)
    return _ratio(np.sum(step * precision, axis=1), pos_cum[:, -1])


def _brier(p: Predictions, w: np.ndarray) -> np.ndarray:
    assert p.score is not None
    return _wmean(w, (p.score - (p.y == 1)) ** 2)


# --- classification (any number of classes) ------------------------------------------------


def _accuracy(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _wmean(w, p.y == p.pred)


def _log_loss(p: Predictions, w: np.ndarray) -> np.ndarray:
    assert p.proba is not None
    true_proba = np.clip(p.proba[np.arange(p.n), p.y], _EPS, 1 - _EPS)
    return _wmean(w, -np.log(true_proba))


def _one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(np.eye(k, dtype=float)[codes])


def _balanced_accuracy(p: Predictions, w: np.ndarray) -> np.ndarray:
    k = len(p.classes)
    truth = _one_hot(p.y, k)
    hits = w @ (truth * (p.y == p.pred)[:, None])
    recall = _ratio(hits, w @ truth)
    return _nanmean_rows(recall)


def _f1_macro(p: Predictions, w: np.ndarray) -> np.ndarray:
    k = len(p.classes)
    truth, guess = _one_hot(p.y, k), _one_hot(p.pred, k)
    tp = w @ (truth * guess)
    den = 2 * tp + (w @ guess - tp) + (w @ truth - tp)
    return _nanmean_rows(_ratio(2 * tp, den))


def _roc_auc_ovr(p: Predictions, w: np.ndarray) -> np.ndarray:
    assert p.proba is not None
    per_class = [
        weighted_auc((p.y == c).astype(float), p.proba[:, c], w) for c in range(len(p.classes))
    ]
    return _nanmean_rows(np.column_stack(per_class))


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over columns, ignoring NaN; NaN for a row with no defined value (no warning)."""
    defined = ~np.isnan(values)
    return _ratio(np.where(defined, values, 0.0).sum(axis=1), defined.sum(axis=1))


# --- regression ------------------------------------------------------------------------------


def _rmse(p: Predictions, w: np.ndarray) -> np.ndarray:
    return np.asarray(np.sqrt(_wmean(w, (p.y - p.pred) ** 2)))


def _mae(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _wmean(w, np.abs(p.y - p.pred))


def _r2(p: Predictions, w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1)
    mean_y = _ratio(w @ p.y, total)
    ss_tot = w @ (p.y**2) - total * mean_y**2
    ss_res = w @ ((p.y - p.pred) ** 2)
    scale = np.maximum(np.abs(w @ (p.y**2)), 1.0)
    return np.where(ss_tot > 1e-12 * scale, 1.0 - _ratio(ss_res, ss_tot), np.nan)


_B: frozenset[Task] = frozenset({"binary"})
_M: frozenset[Task] = frozenset({"multiclass"})
_R: frozenset[Task] = frozenset({"regression"})
_C: frozenset[Task] = frozenset({"binary", "multiclass"})

METRICS: dict[str, MetricSpec] = {
    s.name: s
    for s in [
        MetricSpec("roc_auc", _B, True, True, _roc_auc, "Area under the ROC curve"),
        MetricSpec("average_precision", _B, True, True, _average_precision,
                   "Area under the precision-recall curve (step-wise)"),
        MetricSpec("accuracy", _C, True, False, _accuracy, "Share of rows predicted right"),
        MetricSpec("balanced_accuracy", _C, True, False, _balanced_accuracy,
                   "Mean recall over classes"),
        MetricSpec("precision", _B, True, False, _precision, "Precision of the positive class"),
        MetricSpec("recall", _B, True, False, _recall, "Recall of the positive class"),
        MetricSpec("f1", _B, True, False, _f1, "F1 of the positive class"),
        MetricSpec("f1_macro", _M, True, False, _f1_macro, "Unweighted mean F1 over classes"),
        MetricSpec("roc_auc_ovr", _M, True, True, _roc_auc_ovr,
                   "Mean one-vs-rest ROC AUC over classes"),
        MetricSpec("log_loss", _C, False, True, _log_loss, "Mean negative log-likelihood"),
        MetricSpec("brier", _B, False, True, _brier,
                   "Mean squared error of the positive-class probability"),
        MetricSpec("rmse", _R, False, False, _rmse, "Root mean squared error"),
        MetricSpec("mae", _R, False, False, _mae, "Mean absolute error"),
        MetricSpec("r2", _R, True, False, _r2, "Coefficient of determination"),
    ]
}  # fmt: skip


def metrics_for(task: Task, has_proba: bool) -> list[MetricSpec]:
    """The metrics computed for ``task`` (probability metrics only when there are probabilities).

    >>> [m.name for m in metrics_for("regression", has_proba=False)]
    ['rmse', 'mae', 'r2']
    """
    return [s for s in METRICS.values() if task in s.tasks and (has_proba or not s.needs_proba)]


def primary_metric(task: Task, has_proba: bool) -> str:
    """The metric robustness and permutation importance are measured with.

    >>> primary_metric("binary", True), primary_metric("binary", False)
    ('roc_auc', 'accuracy')
    """
    if task == "regression":
        return "rmse"
    if task == "binary" and has_proba:
        return "roc_auc"
    return "accuracy"
