"""Per-slice metrics: the same metrics and intervals on each value of a slicing column.

A categorical column gives one slice per value; a numeric column with more than
``MAX_NUMERIC_VALUES`` distinct values is cut into quartile bins (``[lo, hi)``); missing
values form their own slice, ``(missing)``. Each slice is bootstrapped within itself with its
own seeded stream, so adding a slice column never changes another slice's interval.

A slice is flagged ``is_small`` (with a warning) when it has fewer than ``min_slice_size``
rows or, for classification, fewer than ``MIN_CLASS_ROWS`` rows of its rarest class among
those the metric needs: an AUC on four positives says little, whatever its interval says.

>>> import pandas as pd
>>> [label for label, _ in slice_groups(pd.Series(["a", "b", None, "a"]))]
['a', 'b', '(missing)']
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.evaluation.bootstrap import MetricValue, run_bootstrap, seed_for, to_metric_value
from modelpilot.evaluation.comparison import Difference, baseline_key, differences, model_key
from modelpilot.evaluation.metrics import MetricSpec
from modelpilot.evaluation.prediction import Predictions

MAX_NUMERIC_VALUES = 10
N_NUMERIC_BINS = 4
MIN_CLASS_ROWS = 10
MISSING = "(missing)"


@dataclass(frozen=True)
class SliceResult:
    """Metrics (with intervals) on the rows where ``column`` has value ``group``."""

    column: str
    group: str
    n: int
    metrics: dict[str, MetricValue]
    is_small: bool
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "group": self.group,
            "n": self.n,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "is_small": self.is_small,
            "warning": self.warning,
        }


def slice_labels(values: pd.Series) -> tuple[list[str], np.ndarray]:
    """Each row's slice label as an index into the ordered labels (``(missing)`` last).

    >>> slice_labels(pd.Series([3.0, None, 1.0]))
    (['1.0', '3.0', '(missing)'], array([1, 2, 0]))
    """
    missing = values.isna().to_numpy()
    present = values[~missing]
    binned = _is_binned(present)
    text = _bin_labels(present) if binned else present.astype(str).to_numpy()
    names = sorted(set(text.tolist()), key=_bin_start if binned else str)
    if missing.any():
        names.append(MISSING)
    labels = np.full(len(values), MISSING, dtype=object)
    labels[~missing] = text
    return names, pd.Index(names).get_indexer(pd.Index(labels))


def slice_groups(values: pd.Series) -> list[tuple[str, np.ndarray]]:
    """``(label, row positions)`` for each slice of ``values``, in label order."""
    names, codes = slice_labels(values)
    return [(name, np.flatnonzero(codes == i)) for i, name in enumerate(names)]


def _is_binned(values: pd.Series) -> bool:
    return (
        pd.api.types.is_numeric_dtype(values)
        and not pd.api.types.is_bool_dtype(values)
        and values.nunique() > MAX_NUMERIC_VALUES
    )


def _bin_start(label: str) -> float:
    return float(label[1:].split(",")[0])


def _bin_labels(values: pd.Series) -> np.ndarray:
    """Quantile bins ``[lo, hi)`` (the last one closed) of a many-valued numeric column."""
    numbers = values.to_numpy(dtype=float)
    edges = np.unique(np.quantile(numbers, np.linspace(0, 1, N_NUMERIC_BINS + 1)))
    idx = np.searchsorted(edges[1:-1], numbers, side="right")
    names = [f"[{lo:.4g}, {hi:.4g})" for lo, hi in itertools.pairwise(edges)]
    names[-1] = names[-1][:-1] + "]"
    return np.array(names, dtype=object)[idx]


def small_slice_reason(preds: Predictions, min_slice_size: int) -> str | None:
    """Why a slice is too small to trust, or ``None``."""
    if preds.n < min_slice_size:
        return f"only {preds.n} rows (fewer than {min_slice_size})"
    if preds.task == "binary":
        positives = int(np.sum(preds.y == 1))
        rarest = min(positives, preds.n - positives)
        if rarest < MIN_CLASS_ROWS:
            return f"only {rarest} rows of its rarer class (fewer than {MIN_CLASS_ROWS})"
    return None


def evaluate_slices(
    data: pd.DataFrame,
    columns: Sequence[str],
    model: Predictions,
    baseline: Predictions | None,
    specs: Sequence[MetricSpec],
    shared: Sequence[MetricSpec],
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
    min_slice_size: int,
) -> tuple[list[SliceResult], list[Difference]]:
    """Metrics per slice, and (with a baseline) paired differences for the ``shared`` metrics."""
    results: list[SliceResult] = []
    diffs: list[Difference] = []
    for column in columns:
        for group, rows in slice_groups(data[column]):
            part = model.take(rows)
            stats = {model_key(s.name): _bind(s, part) for s in specs}
            if baseline is not None:
                base = baseline.take(rows)
                stats.update({baseline_key(s.name): _bind(s, base) for s in shared})
            draws = run_bootstrap(
                len(rows), stats, n_bootstrap=n_bootstrap, seed=seed_for(seed, column, group)
            )
            metrics = {s.name: to_metric_value(model_key(s.name), draws, confidence) for s in specs}
            reason = small_slice_reason(part, min_slice_size)
            warning = None if reason is None else f"slice {column}={group} has {reason}"
            results.append(
                SliceResult(column, group, len(rows), metrics, reason is not None, warning)
            )
            if baseline is not None:
                diffs += differences(
                    draws, shared, confidence=confidence, column=column, group=group
                )
    return results, diffs


def _bind(spec: MetricSpec, preds: Predictions) -> Any:
    return lambda w: spec.fn(preds, w)
