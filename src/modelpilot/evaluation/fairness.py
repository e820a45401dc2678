"""Fairness per sensitive attribute, with fairlearn's definitions computed here.

For a binary classifier with predictions ŷ (1 = the positive class, ``classes[1]``), labels
y and groups g of a sensitive attribute A:

* selection rate ``SR_g = P(ŷ = 1 | A = g)``;
* **demographic parity difference** ``DPD = max_g SR_g − min_g SR_g`` (0 = parity), and the
  ratio ``min_g SR_g / max_g SR_g`` (1 = parity);
* true/false positive rates ``TPR_g = P(ŷ = 1 | y = 1, A = g)``,
  ``FPR_g = P(ŷ = 1 | y = 0, A = g)``;
* **equalized odds difference** ``EOD = max(max_g TPR_g − min_g TPR_g, max_g FPR_g − min_g
  FPR_g)``, and the ratio ``min(min TPR / max TPR, min FPR / max FPR)``.

These match fairlearn's ``demographic_parity_difference`` and ``equalized_odds_difference``
(``method="between_groups"``, ``agg="worst_case"``). A group with no positive (negative) rows
has no TPR (FPR); it is left out of that rate's difference. Missing attribute values form
their own group, ``(missing)``; a numeric attribute with many values (age) is cut into
quartiles as slices are. Intervals come from the shared vectorised bootstrap.

Multiclass and regression tasks get per-group metrics only: both definitions need a binary
decision.

>>> import numpy as np
>>> groups = np.array(["a", "a", "b", "b"])
>>> demographic_parity_difference(np.array([1, 0, 1, 1]), groups)
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown
from modelpilot.evaluation.bootstrap import (
    MetricValue,
    finite,
    run_bootstrap,
    seed_for,
    to_metric_value,
)
from modelpilot.evaluation.metrics import MetricSpec, point_value
from modelpilot.evaluation.prediction import Predictions
from modelpilot.evaluation.slices import slice_labels


@dataclass(frozen=True)
class GroupMetrics:
    """Rates and task metrics for one group of a sensitive attribute."""

    group: str
    n: int
    selection_rate: float | None
    true_positive_rate: float | None
    false_positive_rate: float | None
    metrics: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n": self.n,
            "selection_rate": self.selection_rate,
            "true_positive_rate": self.true_positive_rate,
            "false_positive_rate": self.false_positive_rate,
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class FairnessResult:
    """Group metrics and disparity measures for one sensitive attribute."""

    attribute: str
    groups: list[GroupMetrics]
    demographic_parity_difference: MetricValue | None
    demographic_parity_ratio: float | None
    equalized_odds_difference: MetricValue | None
    equalized_odds_ratio: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        dpd, eod = self.demographic_parity_difference, self.equalized_odds_difference
        return {
            "attribute": self.attribute,
            "groups": [g.to_dict() for g in self.groups],
            "demographic_parity_difference": None if dpd is None else dpd.to_dict(),
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": None if eod is None else eod.to_dict(),
            "equalized_odds_ratio": self.equalized_odds_ratio,
            "note": self.note,
        }


def group_codes(values: pd.Series) -> tuple[list[str], np.ndarray]:
    """Group labels (as slices: sorted, numeric quartiles, ``(missing)`` last) and row codes."""
    return slice_labels(values)


def _rates(
    decision: np.ndarray, condition: np.ndarray, onehot: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """``P(decision | condition, group)`` per weight row and group; NaN for empty groups."""
    den = w @ (onehot * condition[:, None])
    num = w @ (onehot * (condition & decision)[:, None])
    out = np.full(den.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _spread(rates: np.ndarray) -> np.ndarray:
    """max − min over groups with a defined rate; NaN when fewer than two are defined."""
    defined = ~np.isnan(rates)
    hi = np.where(defined, rates, -np.inf).max(axis=1)
    lo = np.where(defined, rates, np.inf).min(axis=1)
    return np.where(defined.sum(axis=1) >= 2, hi - lo, np.nan)


def _dpd(pred1: np.ndarray, onehot: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _spread(_rates(pred1, np.ones_like(pred1), onehot, w))


def _eod(y1: np.ndarray, pred1: np.ndarray, onehot: np.ndarray, w: np.ndarray) -> np.ndarray:
    tpr = _spread(_rates(pred1, y1, onehot, w))
    fpr = _spread(_rates(pred1, ~y1, onehot, w))
    return np.asarray(np.fmax(tpr, fpr))  # fmax skips a NaN side; NaN only when both are undefined


def demographic_parity_difference(y_pred: np.ndarray, groups: np.ndarray) -> float:
    """max − min selection rate ``P(ŷ = 1 | group)`` over groups (0/1 or bool predictions).

    >>> demographic_parity_difference(np.array([1, 1, 0, 0]), np.array([1, 2, 1, 2]))
    0.0
    """
    names, codes = group_codes(pd.Series(groups))
    onehot = np.eye(len(names))[codes]
    return float(_dpd(np.asarray(y_pred).astype(bool), onehot, np.ones((1, codes.size)))[0])


def equalized_odds_difference(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> float:
    """The larger of the TPR and FPR spreads over groups (0/1 or bool labels and predictions).

    >>> equalized_odds_difference(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]),
    ...                           np.array(["a", "a", "b", "b"]))
    1.0
    """
    names, codes = group_codes(pd.Series(groups))
    onehot = np.eye(len(names))[codes]
    y1, pred1 = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    return float(_eod(y1, pred1, onehot, np.ones((1, codes.size)))[0])


def check_attribute(values: pd.Series, attribute: str) -> None:
    """A sensitive attribute needs at least two groups to compare."""
    names, _ = group_codes(values)
    if len(names) < 2:
        raise InvalidInput(
            f"Sensitive attribute '{attribute}' has one group ({shown(names)}) in the "
            "evaluation data; fairness compares groups. Evaluate on data with at least two "
            "groups or drop it from sensitive=.",
            field="sensitive",
        )


def evaluate_fairness(
    data: pd.DataFrame,
    attributes: Sequence[str],
    preds: Predictions,
    specs: Sequence[MetricSpec],
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, FairnessResult]:
    """A :class:`FairnessResult` per sensitive attribute."""
    return {a: _one(data[a], a, preds, specs, n_bootstrap, confidence, seed) for a in attributes}


def _one(
    values: pd.Series,
    attribute: str,
    preds: Predictions,
    specs: Sequence[MetricSpec],
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> FairnessResult:
    names, codes = group_codes(values)
    onehot = np.eye(len(names))[codes]
    binary = preds.task == "binary"
    y1, pred1 = preds.y == 1, preds.pred == 1
    groups = []
    for g, name in enumerate(names):
        part = preds.take(np.flatnonzero(codes == g))
        selected = part.pred == 1
        groups.append(
            GroupMetrics(
                name,
                part.n,
                _rate(selected, np.ones(part.n, dtype=bool)) if binary else None,
                _rate(selected, part.y == 1) if binary else None,
                _rate(selected, part.y == 0) if binary else None,
                {s.name: finite(point_value(s, part)) for s in specs},
            )
        )
    if not binary:
        note = "demographic parity and equalized odds need a binary classifier; groups only"
        return FairnessResult(attribute, groups, None, None, None, None, note)
    draws = run_bootstrap(
        preds.n,
        {"dpd": lambda w: _dpd(pred1, onehot, w), "eod": lambda w: _eod(y1, pred1, onehot, w)},
        n_bootstrap=n_bootstrap,
        seed=seed_for(seed, "fairness", attribute),
    )
    return FairnessResult(
        attribute,
        groups,
        to_metric_value("dpd", draws, confidence),
        _ratio([g.selection_rate for g in groups]),
        to_metric_value("eod", draws, confidence),
        _min_ratio(groups),
    )


def _rate(decision: np.ndarray, condition: np.ndarray) -> float | None:
    total = int(condition.sum())
    return float((decision & condition).sum() / total) if total else None


def _ratio(rates: Sequence[float | None]) -> float | None:
    defined = [r for r in rates if r is not None]
    if len(defined) < 2 or max(defined) == 0:
        return None
    return min(defined) / max(defined)


def _min_ratio(groups: Sequence[GroupMetrics]) -> float | None:
    ratios = [
        _ratio([g.true_positive_rate for g in groups]),
        _ratio([g.false_positive_rate for g in groups]),
    ]
    defined = [r for r in ratios if r is not None]
    return min(defined) if defined else None
