"""Robustness: how the model's metrics move when its inputs get worse.

Each scenario perturbs every applicable feature column of a (seeded) copy of the evaluation
features, predicts again and reports the task's metrics next to the clean values:

* ``noise_<s>``: numeric columns get Gaussian noise with ``s`` times the column's standard
  deviation;
* ``missing_<p>``: each feature value is blanked (NaN/None) with probability ``p``;
* ``unseen_category_<p>``: a share ``p`` of each categorical column becomes a value the model
  never saw (``"__unseen__"``);
* ``category_shift_<p>``: a share ``p`` of each categorical column moves to its rarest
  category, shifting the category mix.

A model that cannot cope (most scikit-learn estimators refuse NaN) does not stop the
evaluation: the scenario's ``status`` is ``failed`` and its message says why, which is itself
the robustness finding. A scenario with no applicable column is ``skipped``.

>>> import numpy as np, pandas as pd
>>> df = pd.DataFrame({"x": np.arange(6.0), "c": list("aabbbc")})
>>> noisy, cols = perturb(df, "missing", 0.5, np.random.default_rng(0))
>>> cols, int(noisy.isna().sum().sum()) > 0
(['x', 'c'], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelpilot.evaluation.bootstrap import finite
from modelpilot.evaluation.metrics import MetricSpec, point_value
from modelpilot.evaluation.prediction import Predictions, Task, one_line, predict

Kind = Literal["noise", "missing", "unseen_category", "category_shift"]
Status = Literal["ok", "failed", "skipped"]
UNSEEN = "__unseen__"
DEFAULT_SCENARIOS: tuple[tuple[Kind, float], ...] = (
    ("noise", 0.1),
    ("noise", 0.5),
    ("missing", 0.1),
    ("missing", 0.3),
    ("unseen_category", 0.2),
    ("category_shift", 0.5),
)


@dataclass(frozen=True)
class RobustnessScenario:
    """The metrics after one perturbation, next to the clean values."""

    name: str
    kind: Kind
    severity: float
    columns: list[str]
    metric: str
    clean_value: float | None
    value: float | None
    metrics: dict[str, float | None]
    status: Status
    message: str | None = None

    @property
    def change(self) -> float | None:
        """Perturbed minus clean value of :attr:`metric`."""
        if self.value is None or self.clean_value is None:
            return None
        return self.value - self.clean_value

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "columns": list(self.columns),
            "metric": self.metric,
            "clean_value": self.clean_value,
            "value": self.value,
            "change": self.change,
            "metrics": dict(self.metrics),
            "status": self.status,
            "message": self.message,
        }


def _is_categorical(series: pd.Series) -> bool:
    """Text or category columns (not numbers, booleans or datetimes)."""
    return isinstance(series.dtype, pd.CategoricalDtype) or (
        pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)
    )


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def perturb(
    features: pd.DataFrame, kind: Kind, severity: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[str]]:
    """A perturbed copy of ``features`` and the columns the perturbation touched."""
    out = features.copy()
    touched: list[str] = []
    for column in features.columns:
        col = features[column]
        new = _perturb_column(col, kind, severity, rng)
        if new is not None:
            out[column] = new
            touched.append(str(column))
    return out, touched


def _perturb_column(
    col: pd.Series, kind: Kind, severity: float, rng: np.random.Generator
) -> pd.Series | None:
    mask = rng.uniform(size=len(col)) < severity
    if kind == "missing":
        return col.mask(mask)
    if kind == "noise":
        if not _is_numeric(col):
            return None
        scale = float(np.nanstd(col.to_numpy(dtype=float)))
        if not np.isfinite(scale) or scale == 0:
            return None
        return col.astype(float) + rng.normal(0.0, severity * scale, len(col))
    if not _is_categorical(col) or col.dropna().empty:
        return None
    if kind == "unseen_category":
        target: object = UNSEEN
    else:
        target = col.value_counts().index[-1]
    if isinstance(col.dtype, pd.CategoricalDtype) and target not in col.cat.categories:
        col = col.cat.add_categories([target])
    return col.mask(mask, target)


def evaluate_robustness(
    model: object,
    features: pd.DataFrame,
    target: pd.Series,
    task: Task,
    clean: Predictions,
    specs: Sequence[MetricSpec],
    primary: str,
    *,
    seed: int,
    scenarios: Sequence[tuple[Kind, float]] = DEFAULT_SCENARIOS,
    max_rows: int = 5000,
    notes: list[str],
) -> list[RobustnessScenario]:
    """Run every scenario on at most ``max_rows`` seeded rows of the evaluation data."""
    rng = np.random.default_rng([seed, 7])
    rows = np.arange(len(features))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    base_features, base_target = features.iloc[rows], target.iloc[rows]
    base = clean.take(rows)
    clean_metrics = {s.name: finite(point_value(s, base)) for s in specs}
    out = []
    for i, (kind, severity) in enumerate(scenarios):
        scenario_rng = np.random.default_rng([seed, 7, i])
        changed, columns = perturb(base_features, kind, severity, scenario_rng)
        name = f"{kind}_{severity:g}"
        common = (name, kind, severity, columns, primary, clean_metrics[primary])
        if not columns:
            why = "no numeric feature" if kind == "noise" else "no categorical feature"
            out.append(RobustnessScenario(*common, None, {}, "skipped", why))
            continue
        try:
            preds = predict(model, changed, base_target, task, notes=notes, role="model")
        except Exception as exc:  # any failure of the model under bad input is the finding
            message = f"{type(exc).__name__}: {one_line(exc, 300)}"
            out.append(RobustnessScenario(*common, None, {}, "failed", message))
            continue
        values = {s.name: finite(point_value(s, preds)) for s in specs}
        out.append(RobustnessScenario(*common, values[primary], values, "ok"))
    return out
