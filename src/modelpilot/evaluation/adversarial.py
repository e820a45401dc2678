"""Adversarial robustness of a tabular classifier: how small a change flips its prediction.

For each sampled row a bounded greedy coordinate search looks for the smallest perturbation
that changes the predicted class. Sizes are measured per feature in units of that feature's
observed range on the evaluation data (``|delta_j| / (max_j - min_j)``) and a perturbation's
size is the largest of them (an L-infinity ball in range units); every perturbed value stays
inside the observed range. At each size ``eps`` of a fixed grid the search tries, for rows not
yet flipped, every numeric feature moved alone by ``+eps`` and ``-eps``, then all numeric
features moved together by ``eps`` in the direction that lowered the predicted class's
probability most (the greedy step; it needs ``predict_proba``). The first ``eps`` that flips
a row is its minimal perturbation: an upper bound on the true minimum, found by a black-box
search in the spirit of decision-based attacks on tabular models (Cartella et al.,
"Adversarial Attacks for Tabular Data", 2021), not a certificate.

The headline is the share of rows flipped within a budget (5% of each feature's range by
default): near 0 is robust. Categorical and boolean features are not perturbed.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
>>> y = pd.Series((X["a"] > 0).astype(int))
>>> result = evaluate_adversarial(LogisticRegression().fit(X, y), X, y, "binary", seed=0,
...                               notes=[])
>>> result.flip_share, result.by_feature["a"] > 0  # about 22% of rows have |a| < 5% of range
(0.235, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown
from modelpilot.evaluation.prediction import Predictions, Task, add_note, predict

GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # perturbation sizes tried, in range units
DEFAULT_BUDGET = 0.05


@dataclass(frozen=True)
class AdversarialResult:
    """Per-row minimal flipping perturbations (None: not flipped up to ``searched_up_to``)."""

    budget: float
    rows: int
    flip_share: float
    median_min_perturbation: float | None
    min_perturbations: list[float | None]
    by_feature: dict[str, int]
    features: list[str]
    searched_up_to: float
    notes: list[str] = field(default_factory=list)

    def flip_share_at(self, budget: float) -> float:
        """The share of rows flipped by a perturbation of at most ``budget`` (a lower bound
        between grid sizes, since a row's minimum is known only to the grid)."""
        flipped = [p for p in self.min_perturbations if p is not None and p <= budget + 1e-12]
        return len(flipped) / max(self.rows, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "rows": self.rows,
            "flip_share": self.flip_share,
            "median_min_perturbation": self.median_min_perturbation,
            "min_perturbations": list(self.min_perturbations),
            "by_feature": dict(self.by_feature),
            "features": list(self.features),
            "searched_up_to": self.searched_up_to,
            "notes": list(self.notes),
        }


def check_budget(budget: object) -> float:
    """A budget is a share of each feature's range in (0, 1]."""
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget <= 1:
        raise InvalidInput(
            f"adversarial_budget must be a number in (0, 1] (a share of each feature's "
            f"observed range, e.g. 0.05); got {shown(budget)}.",
            field="adversarial_budget",
        )
    return float(budget)


def evaluate_adversarial(
    model: object,
    features: pd.DataFrame,
    target: pd.Series,
    task: Task,
    *,
    seed: int,
    notes: list[str],
    budget: float = DEFAULT_BUDGET,
    max_rows: int = 200,
    max_seconds: float = 60.0,
) -> AdversarialResult | None:
    """Search each of at most ``max_rows`` seeded rows for its smallest flipping perturbation,
    stopping at ``max_seconds`` (rows not flipped by then count as not flipped)."""
    if task == "regression":
        add_note(notes, "adversarial robustness not measured: it is defined for classifiers")
        return None
    budget = check_budget(budget)
    lo, hi = _ranges(features)
    if not lo:
        add_note(notes, "adversarial robustness not measured: no numeric feature varies")
        return None
    rng = np.random.default_rng([seed, 13])
    rows = np.arange(len(features))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    X, y = features.iloc[rows].reset_index(drop=True), target.iloc[rows].reset_index(drop=True)
    search = _Search(model, X, y, task, lo, hi, notes)
    own: list[str] = []
    deadline = time.monotonic() + max_seconds
    searched = 0.0
    for eps in sorted({*GRID, budget}):
        if not search.active.any():
            break
        if time.monotonic() > deadline:
            own.append(f"search stopped at {searched:g} of the range after {max_seconds:g} s")
            break
        search.step(eps)
        searched = eps
    found = [None if not np.isfinite(v) else float(v) for v in search.min_eps]
    flipped = np.array([v for v in found if v is not None])
    return AdversarialResult(
        budget=budget,
        rows=len(rows),
        flip_share=float(np.mean(search.min_eps <= budget + 1e-12)),
        median_min_perturbation=float(np.median(flipped)) if flipped.size else None,
        min_perturbations=found,
        by_feature=search.by_feature,
        features=list(lo),
        searched_up_to=searched,
        notes=own,
    )


def _ranges(features: pd.DataFrame) -> tuple[dict[str, float], dict[str, float]]:
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for column in features.columns:
        series = features[column]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        values = series.to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size and values.max() > values.min():
            lo[str(column)], hi[str(column)] = float(values.min()), float(values.max())
    return lo, hi


class _Search:
    """The search state: each row's original class and probability, and what flipped it."""

    def __init__(
        self,
        model: object,
        X: pd.DataFrame,
        y: pd.Series,
        task: Task,
        lo: dict[str, float],
        hi: dict[str, float],
        notes: list[str],
    ) -> None:
        self.model, self.X, self.y, self.task = model, X, y, task
        self.lo, self.hi, self.notes = lo, hi, notes
        self.original = self._predict(X)
        self.min_eps = np.full(len(X), np.inf)
        self.by_feature: dict[str, int] = {}

    @property
    def active(self) -> np.ndarray:
        return np.asarray(~np.isfinite(self.min_eps))

    def _predict(self, X: pd.DataFrame) -> Predictions:
        return predict(self.model, X, self.y.iloc[X.index], self.task, notes=self.notes)

    def _own_proba(self, preds: Predictions, rows: np.ndarray) -> np.ndarray | None:
        if preds.proba is None or self.original.proba is None:
            return None
        return np.asarray(preds.proba[np.arange(len(rows)), self.original.pred[rows]])

    def _moved(self, rows: np.ndarray, column: str, delta: np.ndarray | float) -> pd.Series:
        base = self.X[column].iloc[rows].to_numpy(dtype=np.float64)
        moved = np.clip(base + delta, self.lo[column], self.hi[column])
        if pd.api.types.is_integer_dtype(self.X[column]):
            return pd.Series(np.round(moved), index=rows).astype(self.X[column].dtype)
        return pd.Series(moved, index=rows)

    def _record(self, rows: np.ndarray, preds: Predictions, eps: float, what: str) -> None:
        flipped = rows[preds.pred != self.original.pred[rows]]
        flipped = flipped[~np.isfinite(self.min_eps[flipped])]
        if flipped.size:
            self.min_eps[flipped] = eps
            self.by_feature[what] = self.by_feature.get(what, 0) + int(flipped.size)

    def step(self, eps: float) -> None:
        """Try every single-feature move of size ``eps``, then the greedy combined move."""
        start = np.flatnonzero(self.active)
        directions: dict[str, np.ndarray] = {}
        for column in self.lo:
            own: dict[float, np.ndarray | None] = {}
            for sign in (1.0, -1.0):
                preds = self._predict(
                    self._changed(start, {column: np.full(start.size, sign)}, eps)
                )
                self._record(start, preds, eps, column)
                own[sign] = self._own_proba(preds, start)
            plus, minus = own[1.0], own[-1.0]
            if plus is not None and minus is not None:
                directions[column] = np.where(plus <= minus, 1.0, -1.0)
        rows = start[~np.isfinite(self.min_eps[start])]
        if rows.size and len(directions) > 1:
            keep = np.isin(start, rows)
            moves = {c: d[keep] for c, d in directions.items()}
            self._record(rows, self._predict(self._changed(rows, moves, eps)), eps, "combined")

    def _changed(self, rows: np.ndarray, moves: dict[str, np.ndarray], eps: float) -> pd.DataFrame:
        """``rows`` with each column in ``moves`` shifted by ``direction * eps * range``."""
        changed = self.X.iloc[rows].copy()
        for column, direction in moves.items():
            span = self.hi[column] - self.lo[column]
            changed[column] = self._moved(rows, column, direction * eps * span)
        return changed
