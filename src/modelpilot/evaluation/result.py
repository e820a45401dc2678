"""The evaluation result: every section, with views for notebooks, storage and people.

``to_frame()`` gives one long table (section, name, column, group, value, lower, upper, n),
``to_dict()`` strict JSON (no NaN; bootstrap replicates are left out) to store on a model
version, ``save_html(path)`` a self-contained page with inline SVG plots.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from modelpilot.evaluation import evaluate
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x": rng.normal(size=400), "plan": rng.choice(["a", "b"], 400)})
>>> df["y"] = (df["x"] + rng.normal(size=400) > 0).astype(int)
>>> model = LogisticRegression().fit(df[["x"]], df["y"])
>>> result = evaluate(model, df, "y", slices=["plan"], n_bootstrap=200, robustness=False,
...                   explain=False)
>>> m = result.metrics["roc_auc"]
>>> m.lower < m.value < m.upper
True
>>> sorted(set(result.to_frame()["section"]))
['calibration', 'metric', 'slice']
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot.evaluation.adversarial import AdversarialResult
from modelpilot.evaluation.bootstrap import MetricValue
from modelpilot.evaluation.calibration import CalibrationResult
from modelpilot.evaluation.comparison import Comparison
from modelpilot.evaluation.explanations import Explanations
from modelpilot.evaluation.fairness import FairnessResult
from modelpilot.evaluation.membership import MembershipResult
from modelpilot.evaluation.prediction import Task
from modelpilot.evaluation.robustness import RobustnessScenario
from modelpilot.evaluation.slices import SliceResult

SCHEMA_VERSION = 1
_COLUMNS = ["section", "name", "column", "group", "value", "lower", "upper", "n"]


@dataclass(frozen=True)
class EvaluationResult:
    """Everything :func:`~modelpilot.evaluation.evaluate` measured about one model."""

    task: Task
    target: str
    n_rows: int
    features: list[str]
    classes: list[Any]
    primary_metric: str
    confidence: float
    n_bootstrap: int
    seed: int
    metrics: dict[str, MetricValue]
    slices: list[SliceResult]
    calibration: CalibrationResult | None
    fairness: dict[str, FairnessResult]
    robustness: list[RobustnessScenario]
    explanations: Explanations | None
    comparison: Comparison | None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model_name: str = "model"
    baseline_name: str | None = None
    adversarial: AdversarialResult | None = None
    membership: MembershipResult | None = None

    def slice(self, column: str, group: str) -> SliceResult:
        """The slice where ``column`` is ``group`` (labels as in :attr:`slices`)."""
        for s in self.slices:
            if (s.column, s.group) == (column, group):
                return s
        known = ", ".join(f"{s.column}={s.group}" for s in self.slices) or "none"
        raise KeyError(f"No slice {column}={group}; slices: {known}")

    def to_frame(self) -> pd.DataFrame:
        """One row per value: metrics, slices, calibration, fairness, robustness, …"""
        rows: list[tuple[Any, ...]] = []
        for name, v in self.metrics.items():
            rows.append(("metric", name, None, None, v.value, v.lower, v.upper, self.n_rows))
        for s in self.slices:
            for name, v in s.metrics.items():
                rows.append(("slice", name, s.column, s.group, v.value, v.lower, v.upper, s.n))
        if self.calibration is not None:
            e = self.calibration.ece
            rows.append(("calibration", "ece", None, None, e.value, e.lower, e.upper, self.n_rows))
        for attribute, f in self.fairness.items():
            for label, mv in (
                ("demographic_parity_difference", f.demographic_parity_difference),
                ("equalized_odds_difference", f.equalized_odds_difference),
            ):
                if mv is not None:
                    rows.append(
                        (
                            "fairness",
                            label,
                            attribute,
                            None,
                            mv.value,
                            mv.lower,
                            mv.upper,
                            self.n_rows,
                        )
                    )
        for r in self.robustness:
            rows.append(("robustness", r.metric, r.name, None, r.value, None, None, None))
        if self.explanations is not None:
            for imp in self.explanations.permutation:
                rows.append(
                    (
                        "explanation",
                        "permutation_importance",
                        imp.feature,
                        None,
                        imp.importance,
                        None,
                        None,
                        None,
                    )
                )
        if self.adversarial is not None:
            a = self.adversarial
            rows.append(("adversarial", "flip_share", None, None, a.flip_share, None, None, a.rows))
        if self.membership is not None:
            m = self.membership
            n = m.members + m.non_members
            rows.append(("membership", "auc", None, None, m.auc, None, None, n))
        if self.comparison is not None:
            for d in [*self.comparison.metrics.values(), *self.comparison.slices]:
                rows.append(
                    (
                        "comparison",
                        d.metric,
                        d.column,
                        d.group,
                        d.difference,
                        d.lower,
                        d.upper,
                        None,
                    )
                )
        return pd.DataFrame(rows, columns=_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form; ``metrics`` and ``calibration.bins`` are what model cards read."""
        return {
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "target": self.target,
            "n_rows": self.n_rows,
            "features": list(self.features),
            "classes": [_jsonable(c) for c in self.classes],
            "primary_metric": self.primary_metric,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "model": self.model_name,
            "baseline": self.baseline_name,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "slices": [s.to_dict() for s in self.slices],
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "fairness": {k: v.to_dict() for k, v in self.fairness.items()},
            "robustness": [r.to_dict() for r in self.robustness],
            "explanations": None if self.explanations is None else self.explanations.to_dict(),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "adversarial": None if self.adversarial is None else self.adversarial.to_dict(),
            "membership": None if self.membership is None else self.membership.to_dict(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as strict JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML page (inline SVG, no scripts, nothing from the network)."""
        from modelpilot.evaluation.html import render_html

        return write_atomic(Path(path), render_html(self))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_atomic(target: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``target`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
