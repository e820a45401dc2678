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
from typing import Any

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


def _shared(p: Predictions, w: np.ndarray, name: str, compute: Callable[[], Any]) -> Any:
    """A statistic several metrics need (counts, ranking sums), computed once per weight matrix.

    The bootstrap calls every metric with the same chunk in turn, so one slot holding the
    latest ``w`` is enough. It lives on the Predictions, so two evaluations never share it.
    """
    slot = p.memo.setdefault("weights", {})
    if slot.get("w") is not w:
        slot.clear()
        slot["w"] = w
    if name not in slot:
        slot[name] = compute()
    return slot[name]


def _fixed(p: Predictions, name: str, compute: Callable[[], Any]) -> Any:
    """A statistic of the predictions alone (a sort order), computed once."""
    fixed = p.memo.setdefault("fixed", {})
    if name not in fixed:
        fixed[name] = compute()
    return fixed[name]


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = np.nan) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _total(p: Predictions, w: np.ndarray) -> np.ndarray:
    return np.asarray(_shared(p, w, "total", lambda: w.sum(axis=1)))


def _wmean(p: Predictions, w: np.ndarray, values: np.ndarray) -> np.ndarray:
    return _ratio(w @ values.astype(float), _total(p, w))


# --- ranking metrics (ROC AUC, average precision) --------------------------------------------


@dataclass(frozen=True)
class _Ranking:
    """Sorted positions of positives and negatives, and where each run of tied scores starts."""

    pos_order: np.ndarray  # row indices of positives, ascending score
    neg_order: np.ndarray
    pos_at_start: np.ndarray  # positives before each tie group (ascending), one per group
    neg_at_start: np.ndarray


def _ranking(y01: np.ndarray, score: np.ndarray) -> _Ranking:
    order = np.argsort(score, kind="mergesort")
    is_pos = y01[order] == 1
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos_before = np.r_[0, np.cumsum(is_pos)]
    neg_before = np.r_[0, np.cumsum(~is_pos)]
    return _Ranking(order[is_pos], order[~is_pos], pos_before[starts], neg_before[starts])


def _cumulative(w: np.ndarray) -> np.ndarray:
    """Row-wise running sums with a leading 0 column: ``out[:, k] = w[:, :k].sum(1)``."""
    out = np.zeros((w.shape[0], w.shape[1] + 1))
    np.cumsum(w, axis=1, out=out[:, 1:])
    return out


def _ranking_sums(r: _Ranking, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per tie group g (ascending): positive weight P_g, and the positive and negative weight
    below the group, plus the totals. Running sums and gathers only, no per-group loops."""
    pos_cum, neg_cum = _cumulative(w[:, r.pos_order]), _cumulative(w[:, r.neg_order])
    pos_below, neg_below = pos_cum[:, r.pos_at_start], neg_cum[:, r.neg_at_start]
    pos_total, neg_total = pos_cum[:, -1:], neg_cum[:, -1:]
    return (
        _next_minus(pos_below, pos_total),
        pos_below,
        neg_below,
        pos_total[:, 0],
        neg_total[:, 0],
    )


def _shifted(below: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``below`` of the next group per group (the total after the last), without concatenating."""
    out = np.empty_like(below)
    out[:, :-1] = below[:, 1:]
    out[:, -1:] = total.reshape(-1, 1)
    return out


def _next_minus(below: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Weight inside each group: the next group's ``below`` minus this one's."""
    out = _shifted(below, total)
    out -= below
    return out


def _auc_from(sums: tuple[np.ndarray, ...]) -> np.ndarray:
    # a positive in group g beats the negatives below g and half of those tied with it:
    # ½ (N_below(g) + N_below(g + 1)), with N_below(G) the negative total
    pos_in_group, _, neg_below, pos_total, neg_total = sums
    both_ends = _shifted(neg_below, neg_total)
    both_ends += neg_below  # N_below(g) + N_below(g + 1)
    num = 0.5 * np.einsum("ij,ij->i", pos_in_group, both_ends)
    return _ratio(num, pos_total * neg_total)


def _ap_from(sums: tuple[np.ndarray, ...]) -> np.ndarray:
    # thresholds descend through the groups: at group g everything from g upwards is predicted
    # positive, so TP = P_total − P_below(g), FP = N_total − N_below(g);
    # AP = Σ_g P_g · precision_g / P_total
    pos_in_group, pos_below, neg_below, pos_total, neg_total = sums
    tp = np.subtract(pos_total[:, None], pos_below)
    predicted = np.subtract(neg_total[:, None], neg_below)
    predicted += tp
    np.maximum(predicted, 1e-300, out=predicted)  # 0 only where tp is 0 too
    precision = np.divide(tp, predicted, out=tp)  # in place: (B, groups) arrays are large
    return _ratio(np.einsum("ij,ij->i", pos_in_group, precision), pos_total)


def weighted_auc(y01: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC per weight row: P(score₊ > score₋) + ½ P(tie), over weighted pairs."""
    return _auc_from(_ranking_sums(_ranking(y01, score), w))


def _binary_sums(p: Predictions, w: np.ndarray) -> tuple[np.ndarray, ...]:
    assert p.score is not None  # needs_proba guarantees it
    score = p.score
    ranking = _fixed(p, "ranking", lambda: _ranking((p.y == 1).astype(float), score))
    return tuple(_shared(p, w, "ranking", lambda: _ranking_sums(ranking, w)))


def _roc_auc(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _auc_from(_binary_sums(p, w))


def _average_precision(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _ap_from(_binary_sums(p, w))


# --- binary labels --------------------------------------------------------------------------


def _counts(p: Predictions, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def compute() -> np.ndarray:
        y, pred = p.y == 1, p.pred == 1
        return np.asarray(w @ np.column_stack([y & pred, ~y & pred, y & ~pred]).astype(float))

    counts = _shared(p, w, "counts", compute)
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


def _brier(p: Predictions, w: np.ndarray) -> np.ndarray:
    assert p.score is not None
    return _wmean(p, w, (p.score - (p.y == 1)) ** 2)


# --- classification (any number of classes) ------------------------------------------------


def _accuracy(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _wmean(p, w, p.y == p.pred)


def _log_loss(p: Predictions, w: np.ndarray) -> np.ndarray:
    assert p.proba is not None
    true_proba = np.clip(p.proba[np.arange(p.n), p.y], _EPS, 1 - _EPS)
    return _wmean(p, w, -np.log(true_proba))


def _class_counts(p: Predictions, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted (true, predicted, both) counts per class, one matrix product."""
    k = len(p.classes)

    def compute() -> np.ndarray:
        eye = np.eye(k)
        truth, guess = eye[p.y], eye[p.pred]
        return np.asarray(w @ np.concatenate([truth, guess, truth * guess], axis=1))

    counts = _shared(p, w, "class_counts", compute)
    return counts[:, :k], counts[:, k : 2 * k], counts[:, 2 * k :]


def _balanced_accuracy(p: Predictions, w: np.ndarray) -> np.ndarray:
    truth, _, hits = _class_counts(p, w)
    return _nanmean_rows(_ratio(hits, truth))


def _f1_macro(p: Predictions, w: np.ndarray) -> np.ndarray:
    truth, guess, tp = _class_counts(p, w)
    return _nanmean_rows(_ratio(2 * tp, truth + guess))


def _roc_auc_ovr(p: Predictions, w: np.ndarray) -> np.ndarray:
    assert p.proba is not None
    proba = p.proba
    per_class = []
    for c in range(len(p.classes)):

        def rank(c: int = c) -> _Ranking:
            return _ranking((p.y == c).astype(float), proba[:, c])

        per_class.append(_auc_from(_ranking_sums(_fixed(p, f"ranking_{c}", rank), w)))
    return _nanmean_rows(np.column_stack(per_class))


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over columns, ignoring NaN; NaN for a row with no defined value (no warning)."""
    defined = ~np.isnan(values)
    return _ratio(np.where(defined, values, 0.0).sum(axis=1), defined.sum(axis=1))


# --- regression ------------------------------------------------------------------------------


def _rmse(p: Predictions, w: np.ndarray) -> np.ndarray:
    return np.asarray(np.sqrt(_wmean(p, w, (p.y - p.pred) ** 2)))


def _mae(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _wmean(p, w, np.abs(p.y - p.pred))


def _r2(p: Predictions, w: np.ndarray) -> np.ndarray:
    total = _total(p, w)
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
