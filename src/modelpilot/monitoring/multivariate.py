"""Multivariate drift: can a classifier tell the reference rows from the current ones?

Per-column tests miss changes in how columns relate (a correlation that flips, a segment
that moves) when every marginal stays put. A domain classifier catches those: label the
reference rows 0 and the current rows 1, train a gradient-boosted classifier with
cross-fitting, and measure its out-of-fold ROC AUC. 0.5 means the two are indistinguishable;
the features whose shuffling costs the most AUC are the ones that drive the drift.

The AUC comes with its own ``1 - alpha`` confidence interval (DeLong's variance of the AUC
on the out-of-fold predictions), and the verdict is that the whole interval lies above
``threshold`` (default 0.55: 0.5 plus a minimum effect, so huge samples do not alarm on
trivia and small ones do not alarm on luck). The p-value (the AUC against its distribution
under no drift, Mann-Whitney normal approximation, one-sided) is reported beside it.

References: E. Rabanser, S. Günnemann and Z. Lipton, "Failing loudly: an empirical study of
methods for detecting dataset shift", NeurIPS 2019 (domain classifiers as shift detectors);
E. R. DeLong, D. M. DeLong and D. L. Clarke-Pearson, "Comparing the areas under two or more
correlated receiver operating characteristic curves", Biometrics 44(3), 1988; X. Sun and
W. Xu, "Fast implementation of DeLong's algorithm", IEEE Signal Process. Lett. 21(11), 2014.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=(2000, 2))
>>> b = rng.normal(size=(2000, 2))
>>> b[:, 1] = b[:, 0] + rng.normal(scale=0.3, size=2000)  # same marginal scale, new relation
>>> ref, cur = pd.DataFrame(a, columns=["x", "y"]), pd.DataFrame(b, columns=["x", "y"])
>>> result = domain_classifier_drift(ref, cur, max_rows=2000, seed=0)
>>> result.drifted, result.auc > 0.7
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.profile import infer_kind, require_columns, require_frame

DEFAULT_AUC_THRESHOLD = 0.55
_MAX_CATEGORICAL_LEVELS = 250  # HistGradientBoosting's native categorical limit (255 bins)


@dataclass(frozen=True)
class MultivariateDriftResult:
    """Out-of-fold AUC of a reference-vs-current classifier and what drives it."""

    auc: float
    p_value: float
    threshold: float
    drifted: bool
    feature_importance: dict[str, float]
    n_reference: int
    n_current: int
    auc_lower: float | None = None  # None in reports stored before the interval existed
    auc_upper: float | None = None
    confidence: float | None = None

    def top_features(self, k: int = 5) -> list[str]:
        """The ``k`` features with the largest importance (AUC lost when shuffled)."""
        return list(self.feature_importance)[:k]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "method": "domain_classifier",
            "auc": self.auc,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "feature_importance": dict(self.feature_importance),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "auc_lower": self.auc_lower,
            "auc_upper": self.auc_upper,
            "confidence": self.confidence,
        }


def domain_classifier_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    threshold: float = DEFAULT_AUC_THRESHOLD,
    alpha: float = 0.05,
    max_rows: int = 5000,
    n_splits: int = 3,
    seed: int = 0,
) -> MultivariateDriftResult:
    """Domain-classifier drift between two frames (at most ``max_rows`` rows from each).

    Drifted when the AUC's ``1 - alpha`` interval lies above ``threshold``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    ref_frame = require_frame(reference, "reference")
    cur_frame = require_frame(current, "current")
    names = list(ref_frame.columns) if columns is None else list(columns)
    require_columns(ref_frame, names, "reference data")
    require_columns(cur_frame, names, "current data")
    rng = np.random.default_rng(seed)
    ref_rows = _sample(ref_frame[names], max_rows, rng)
    cur_rows = _sample(cur_frame[names], max_rows, rng)
    if min(len(ref_rows), len(cur_rows)) < n_splits:
        raise InvalidInput(
            f"Domain-classifier drift needs at least {n_splits} rows on each side; got "
            f"{len(ref_rows)} reference and {len(cur_rows)} current rows.",
        )
    features, is_categorical = _encode(ref_rows, cur_rows, set(categorical))
    target = np.r_[np.zeros(len(ref_rows)), np.ones(len(cur_rows))]
    oof = np.zeros(target.size)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    importance = np.zeros(len(names))
    for train, test in folds.split(features, target):
        model = HistGradientBoostingClassifier(
            max_iter=60,
            max_leaf_nodes=15,
            early_stopping=False,
            categorical_features=is_categorical,
            random_state=seed,
        )
        model.fit(features[train], target[train])
        oof[test] = model.predict_proba(features[test])[:, 1]
        importance += _permutation_importance(model, features[test], target[test], rng)
    auc = float(roc_auc_score(target, oof))
    importance /= n_splits
    p_value = _auc_p_value(auc, len(ref_rows), len(cur_rows))
    lower, upper = auc_interval(target, oof, 1 - alpha)
    ranked = sorted(zip(names, importance, strict=True), key=lambda item: -item[1])
    return MultivariateDriftResult(
        auc=auc,
        p_value=p_value,
        threshold=threshold,
        drifted=lower > threshold,
        feature_importance={name: max(float(value), 0.0) for name, value in ranked},
        n_reference=len(ref_rows),
        n_current=len(cur_rows),
        auc_lower=lower,
        auc_upper=upper,
        confidence=1 - alpha,
    )


def auc_interval(
    target: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], confidence: float = 0.95
) -> tuple[float, float]:
    """A two-sided normal interval for the ROC AUC of ``scores`` against 0/1 ``target``,
    with DeLong's variance (Sun and Xu's midrank form), clipped to [0, 1].

    >>> y = np.r_[np.zeros(500), np.ones(500)]
    >>> s = np.random.default_rng(0).normal(y * 0.5)
    >>> low, high = auc_interval(y, s)
    >>> bool(0.58 < low < 0.63 < high < 0.68)
    True
    """
    from scipy.stats import rankdata

    positive = scores[target == 1]
    negative = scores[target == 0]
    m, n = positive.size, negative.size
    if m < 2 or n < 2:
        return 0.0, 1.0
    ranks = rankdata(np.r_[positive, negative])
    auc = (ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    # Structural components: each positive's share of negatives below it, and vice versa.
    v10 = (ranks[:m] - rankdata(positive)) / n
    v01 = 1 - (ranks[m:] - rankdata(negative)) / m
    se = math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    z = float(special.ndtri(0.5 + confidence / 2))
    return max(float(auc - z * se), 0.0), min(float(auc + z * se), 1.0)


def _permutation_importance(
    model: Any,
    features: np.ndarray[Any, Any],
    target: np.ndarray[Any, Any],
    rng: np.random.Generator,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """AUC lost when each feature is shuffled, with one predict call for all features."""
    from sklearn.metrics import roc_auc_score

    base = roc_auc_score(target, model.predict_proba(features)[:, 1])
    n_rows, n_features = features.shape
    stacked = np.tile(features, (n_features, 1))
    for j in range(n_features):
        block = slice(j * n_rows, (j + 1) * n_rows)
        stacked[block, j] = features[rng.permutation(n_rows), j]
    scores = model.predict_proba(stacked)[:, 1].reshape(n_features, n_rows)
    return np.array([base - roc_auc_score(target, row) for row in scores])


def _sample(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]


def _encode(
    ref: pd.DataFrame, cur: pd.DataFrame, forced: set[str]
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], list[bool]]:
    """One float matrix for both sides: numbers as is, categories as shared integer codes."""
    blocks, flags = [], []
    for name in ref.columns:
        both = pd.concat([ref[name], cur[name]], ignore_index=True)
        if name in forced or infer_kind(both) == "categorical":
            codes = pd.Categorical(both.astype("string")).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            blocks.append(codes)
            flags.append(bool(np.nanmax(codes, initial=0) < _MAX_CATEGORICAL_LEVELS))
        else:
            try:
                blocks.append(both.to_numpy(dtype=np.float64, na_value=np.nan))
            except (TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"Column {name!r} mixes numbers and text ({shown(both.head(3).tolist())}); "
                    "pass it in categorical=[...] or clean it.",
                    field=str(name),
                ) from exc
            flags.append(False)
    return np.column_stack(blocks), flags


def _auc_p_value(auc: float, n_ref: int, n_cur: int) -> float:
    # Under no drift the AUC is a Mann-Whitney U / (n_ref n_cur) with mean 1/2.
    se = math.sqrt((n_ref + n_cur + 1) / (12 * n_ref * n_cur))
    return float(special.ndtr(-(auc - 0.5) / se))  # normal survival function
