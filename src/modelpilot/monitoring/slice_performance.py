"""Performance by slice over time: a binary classifier's metric on each slice of its
evaluation's slice columns, in each monitoring window, next to the slice's evaluated value.

The slices are those of the version's newest evaluation record (``evaluate(...,
slices=[...])``): the same labels, numeric quartile bins read back from their ``[lo, hi)``
labels (a live value outside the evaluated range counts in the first or last bin). A live
category the evaluation never saw is reported with no reference value. The reference value
of a slice is its metric in that evaluation (held-out data), and the overall reference is the
evaluation's overall metric.

In a window, a slice's metric is *realised* (bootstrap percentile interval) when at least
``min_rows`` of its rows have labels, with at least ``MIN_CLASS_ROWS`` of each class; otherwise
it is *estimated* without labels by CBPE (:mod:`.performance`; interval from simulated label
sets), calibrated on a labelled reference. A slice with fewer than ``min_rows`` rows (default
``MIN_SLICE_ROWS``) or too few of its rarer class is reported and marked small, and never
counts towards an alert: at 200 rows an AUC's 95% interval is about +-0.06 wide, more than the
drop the alert looks for.

The figure ``performance.slice_drop`` (:data:`SLICE_DROP`) is how far the worst slice fell
below its evaluated value *beyond* the fall of the overall metric, counting only slices that
are not small and whose fall is significant: larger than the window's interval and the
evaluation's own interval combined (in quadrature), which with an exact reference value is the
window's interval lying wholly below it; 0 when none. A slice
that falls by 0.05 while the total moves by 0.01 scores about 0.04; when everything falls
together it stays near 0 (the overall rule sees that). The rule ``slice-performance-drop``
(:data:`~modelpilot.alerting.rules.DEFAULT_RULES`) fires when it exceeds 0.03.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> p = rng.beta(2, 2, 4000)
>>> window = pd.DataFrame({"plan": rng.choice(["a", "b"], 4000)})
>>> ref = SliceReference("roc_auc", 0.75, {"plan": ["a", "b"]},
...                      {("plan", "a"): 0.75, ("plan", "b"): 0.75})
>>> report = measure_slices(window, ref, proba=p, pred=p >= 0.5,
...                         labels=(rng.random(4000) < p).astype(float))
>>> [(s.label, s.source, s.is_small) for s in report.slices]
[('plan=a', 'realised', False), ('plan=b', 'realised', False)]
>>> report.slice_drop
0.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.evaluation.bootstrap import run_bootstrap, seed_for, to_metric_value
from modelpilot.evaluation.metrics import METRICS as EVALUATION_METRICS
from modelpilot.evaluation.prediction import Predictions
from modelpilot.evaluation.slices import MIN_CLASS_ROWS, MISSING
from modelpilot.monitoring.estimation.binary import METRICS, estimate_metric
from modelpilot.monitoring.estimation.common import isotonic

SLICE_DROP = "performance.slice_drop"
TABLE_COLUMNS = ("slice", "source", "rows", "labels", "evaluation", "now", "interval", "")
MIN_SLICE_ROWS = 200
N_BOOTSTRAP = 200
N_SIMULATIONS = 200
Source = Literal["realised", "estimated"]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SliceReference:
    """What a window is compared with: the metric, its overall value and its value per slice
    (``(column, group)``) in the evaluation, and each slice column's groups in order."""

    metric: str
    overall: float | None
    groups: dict[str, list[str]]
    values: dict[tuple[str, str], float | None]
    lower_bounds: dict[tuple[str, str], float | None] = field(default_factory=dict)

    @classmethod
    def from_evaluation(cls, payload: Mapping[str, Any]) -> SliceReference | None:
        """The reference in a stored evaluation (``EvaluationResult.to_dict()``), or None
        when it is not a binary classifier's or has no slices or no metric CBPE knows."""
        slices = payload.get("slices") or []
        metrics = payload.get("metrics") or {}
        if payload.get("task") != "binary" or not slices:
            return None
        known = [m for m in ("roc_auc", *METRICS) if _value(metrics.get(m)) is not None]
        if not known:
            return None
        metric = known[0]
        groups: dict[str, list[str]] = {}
        values: dict[tuple[str, str], float | None] = {}
        lower: dict[tuple[str, str], float | None] = {}
        for item in slices:
            column, group = str(item["column"]), str(item["group"])
            groups.setdefault(column, []).append(group)
            values[(column, group)] = _value(item["metrics"].get(metric))
            lower[(column, group)] = _value(item["metrics"].get(metric), "lower")
        return cls(metric, _value(metrics[metric]), groups, values, lower)


@dataclass(frozen=True)
class SlicePerformance:
    """The metric on one slice (``column`` None: every row) of one window."""

    column: str | None
    group: str
    source: Source
    value: float | None
    lower: float | None
    upper: float | None
    n_rows: int
    n_labels: int
    reference: float | None
    is_small: bool
    note: str | None = None
    reference_lower: float | None = None  # the evaluation's lower bound, when it kept one

    @property
    def label(self) -> str:
        """``column=group``, or ``overall``."""
        return "overall" if self.column is None else f"{self.column}={self.group}"

    @property
    def drop(self) -> float | None:
        """How far the value is below the reference (negative: above); None if either is."""
        if self.value is None or self.reference is None:
            return None
        return self.reference - self.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "column": self.column,
            "group": self.group,
            "source": self.source,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "n_rows": self.n_rows,
            "n_labels": self.n_labels,
            "reference": self.reference,
            "is_small": self.is_small,
            "note": self.note,
            "reference_lower": self.reference_lower,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlicePerformance:
        """The inverse of :meth:`to_dict`."""
        return cls(**dict(data))


@dataclass(frozen=True)
class SliceReport:
    """One window's performance overall and per slice, against the evaluation."""

    metric: str
    confidence: float
    min_rows: int
    overall: SlicePerformance
    slices: list[SlicePerformance]

    @property
    def overall_drop(self) -> float:
        """The overall metric's fall below its reference (0 when it rose or is unknown)."""
        return max(self.overall.drop or 0.0, 0.0)

    def excess_drop(self, part: SlicePerformance) -> float | None:
        """How far ``part`` fell beyond the overall fall, if it may alert: not small, and its
        fall larger than its interval's upper half and the evaluation's lower half combined
        (with an exact reference: its whole interval below it); else None."""
        value, upper, reference = part.value, part.upper, part.reference
        if part.is_small or value is None or upper is None or reference is None:
            return None
        below = 0.0 if part.reference_lower is None else reference - part.reference_lower
        if reference - value <= math.hypot(upper - value, below):
            return None
        return reference - value - self.overall_drop

    @property
    def worst(self) -> SlicePerformance | None:
        """The slice with the largest :meth:`excess_drop`, if any slice may alert."""
        scored = [(d, s) for s in self.slices if (d := self.excess_drop(s)) is not None]
        return max(scored, key=lambda pair: pair[0])[1] if scored else None

    @property
    def slice_drop(self) -> float:
        """The figure ``performance.slice_drop``: the worst slice's excess drop, at least 0."""
        worst = self.worst
        return 0.0 if worst is None else max(self.excess_drop(worst) or 0.0, 0.0)

    def describe(self) -> str:
        """One sentence naming the worst slice, its metric before and after, and its interval.

        >>> part = SlicePerformance("plan", "a", "realised", 0.70, 0.68, 0.72, 900, 900, 0.76,
        ...                         False)
        >>> overall = SlicePerformance(None, "(all)", "realised", 0.80, 0.79, 0.81, 9000, 9000,
        ...                            0.805, False)
        >>> SliceReport("roc_auc", 0.95, 200, overall, [part]).describe()
        'slice plan=a: roc_auc 0.76 in the evaluation -> 0.7 now (95% interval 0.68-0.72, realised, 900 rows); overall 0.805 -> 0.8'
        """  # noqa: E501
        overall = f"overall {_num(self.overall.reference)} -> {_num(self.overall.value)}"
        worst = self.worst
        if worst is None or self.slice_drop <= 0:
            return f"no slice's {self.metric} fell below its evaluation beyond the total; {overall}"
        return (
            f"slice {worst.label}: {self.metric} {_num(worst.reference)} in the evaluation -> "
            f"{_num(worst.value)} now ({self.confidence:.0%} interval {_num(worst.lower)}-"
            f"{_num(worst.upper)}, {worst.source}, {worst.n_rows:,} rows); {overall}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per slice, the overall row first."""
        return pd.DataFrame([s.to_dict() for s in [self.overall, *self.slices]])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what a kept monitoring report stores)."""
        return {
            "metric": self.metric,
            "confidence": self.confidence,
            "min_rows": self.min_rows,
            "slice_drop": self.slice_drop,
            "overall": self.overall.to_dict(),
            "slices": [s.to_dict() for s in self.slices],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SliceReport:
        """The inverse of :meth:`to_dict`."""
        return cls(
            metric=str(data["metric"]),
            confidence=float(data["confidence"]),
            min_rows=int(data["min_rows"]),
            overall=SlicePerformance.from_dict(data["overall"]),
            slices=[SlicePerformance.from_dict(s) for s in data["slices"]],
        )

    def table(self) -> list[list[str]]:
        """The per-slice table as text, one row per slice (the overall row first), in the
        order of :data:`TABLE_COLUMNS`: what the CLI and the HTML report show."""
        worst = self.worst if self.slice_drop > 0 else None
        rows = []
        for s in [self.overall, *self.slices]:
            flag = "fell beyond the total" if s is worst else ""
            flag = flag or ("small: never alerts" if s.is_small else "")
            interval = f"{_num(s.lower)}-{_num(s.upper)}"
            rows.append(
                [s.label, s.source, f"{s.n_rows:,}", f"{s.n_labels:,}", _num(s.reference),
                 _num(s.value), interval, flag]
            )  # fmt: skip
        return rows

    def to_html(self) -> str:
        """A self-contained ``<section>`` with the per-slice table (for the HTML report)."""
        head = "".join(f"<th>{escape(h)}</th>" for h in TABLE_COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in self.table()
        )
        return (
            f"<section><h2>Performance by slice ({escape(self.metric)})</h2>"
            f"<p class='muted'>{escape(self.describe())}. Slices under {self.min_rows} rows are "
            "shown but never alert.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
        )


def assign_groups(values: pd.Series, groups: Sequence[str]) -> NDArray[np.object_]:
    """Each live value's slice label among an evaluation's ``groups``: quartile bins by their
    ``[lo, hi)`` bounds, categories by their text (``1`` matches ``1.0``), nulls ``(missing)``,
    unseen categories as their own text.

    >>> assign_groups(pd.Series([0.5, 7.0, None]), ["[0, 2)", "[2, 5]"]).tolist()
    ['[0, 2)', '[2, 5]', '(missing)']
    >>> assign_groups(pd.Series([1, 3]), ["1.0", "2.0"]).tolist()
    ['1.0', '3']
    """
    missing = values.isna().to_numpy()
    out = np.full(len(values), MISSING, dtype=object)
    present = values[~missing]
    bins = [g for g in groups if g != MISSING]
    starts = [_bin_start(g) for g in bins]
    if bins and all(s is not None for s in starts) and pd.api.types.is_numeric_dtype(present):
        edges = np.array(starts[1:], dtype=np.float64)
        index = np.searchsorted(edges, present.to_numpy(dtype=np.float64), side="right")
        out[~missing] = np.array(bins, dtype=object)[index]
        return out
    by_number = {n: g for g in bins if (n := _number(g)) is not None}

    def label(text: str) -> str:
        number = _number(text)
        return text if text in bins or number is None else by_number.get(number, text)

    out[~missing] = [label(v) for v in present.astype(str).tolist()]
    return out


def measure_slices(
    window: pd.DataFrame,
    reference: SliceReference,
    *,
    proba: FloatArray,
    pred: NDArray[np.bool_],
    labels: FloatArray,
    calibration: tuple[FloatArray, FloatArray] | None = None,
    confidence: float = 0.95,
    min_rows: int = MIN_SLICE_ROWS,
    seed: int = 0,
) -> SliceReport:
    """The metric of ``reference`` overall and on each slice of ``window`` (which holds the
    slice columns), realised where enough ``labels`` (0/1, NaN unknown) arrived, else
    estimated by CBPE calibrated on ``calibration`` = (reference probabilities, 0/1 labels).
    ``proba`` is the positive class's probability and ``pred`` the predicted class."""
    calibrated = None if calibration is None else isotonic(*calibration, proba)
    measure = _Measure(reference.metric, proba, pred, labels, calibrated, confidence, min_rows)
    everything = np.arange(len(window))
    overall = measure.part(None, "(all)", everything, reference.overall, seed)
    parts = []
    for column, groups in reference.groups.items():
        if column not in window:
            continue
        assigned = assign_groups(window[column], groups)
        seen = set(assigned.tolist())
        names = [g for g in groups if g in seen] + sorted(seen - set(groups))
        for group in names:
            rows = np.flatnonzero(assigned == group)
            value = reference.values.get((column, group))
            part = measure.part(column, group, rows, value, seed)
            lower = reference.lower_bounds.get((column, group))
            parts.append(dataclasses.replace(part, reference_lower=lower))
    return SliceReport(reference.metric, confidence, min_rows, overall, parts)


@dataclass(frozen=True)
class _Measure:
    metric: str
    proba: FloatArray
    pred: NDArray[np.bool_]
    labels: FloatArray
    calibrated: FloatArray | None
    confidence: float
    min_rows: int

    def part(
        self, column: str | None, group: str, rows: NDArray[np.intp], ref: float | None, seed: int
    ) -> SlicePerformance:
        labelled = rows[~np.isnan(self.labels[rows])]
        positives = int(np.sum(self.labels[labelled] == 1))
        rarer = min(positives, labelled.size - positives)
        key = seed_for(seed, column, group)
        enough = labelled.size >= self.min_rows and rarer >= MIN_CLASS_ROWS
        if enough or self.calibrated is None:
            value, lower, upper = self._realised(labelled, key)
            small = None if enough else self._why_small(labelled.size, rarer, "labelled ")
            if self.calibrated is None and not enough:
                small = f"{small}; no labelled reference to estimate from"
            return SlicePerformance(
                column, group, "realised", value, lower, upper, rows.size, labelled.size, ref,
                small is not None, small,
            )  # fmt: skip
        c = self.calibrated[rows]
        expected_rarer = min(float(c.sum()), float((1 - c).sum()))
        small = self._why_small(rows.size, expected_rarer, "")
        value, lower, upper = None, None, None
        if rows.size > 0:
            value, lower, upper = estimate_metric(
                self.metric, c, self.proba[rows], self.pred[rows], confidence=self.confidence,
                n_simulations=N_SIMULATIONS, rng=np.random.default_rng(key),
            )  # fmt: skip
        return SlicePerformance(
            column, group, "estimated", _finite(value), _finite(lower), _finite(upper),
            rows.size, labelled.size, ref, small is not None, small,
        )  # fmt: skip

    def _why_small(self, n: int, rarer: float, kind: str) -> str | None:
        if n < self.min_rows:
            return f"only {n} {kind}rows (fewer than {self.min_rows})"
        if rarer < MIN_CLASS_ROWS:
            return f"only {rarer:.0f} {kind}rows of its rarer class (fewer than {MIN_CLASS_ROWS})"
        return None

    def _realised(
        self, rows: NDArray[np.intp], seed: Sequence[int]
    ) -> tuple[float | None, float | None, float | None]:
        if rows.size == 0:
            return None, None, None
        y = (self.labels[rows] == 1).astype(np.int64)
        p = self.proba[rows]
        preds = Predictions(
            "binary", y, self.pred[rows].astype(np.int64), np.column_stack([1 - p, p]), (0, 1)
        )
        spec = EVALUATION_METRICS[self.metric]
        draws = run_bootstrap(
            rows.size, {"m": lambda w: spec.fn(preds, w)}, n_bootstrap=N_BOOTSTRAP, seed=seed
        )
        value = to_metric_value("m", draws, self.confidence)
        return value.value, value.lower, value.upper


def _value(stored: Mapping[str, Any] | None, key: str = "value") -> float | None:
    return None if stored is None or stored.get(key) is None else float(stored[key])


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _bin_start(label: str) -> float | None:
    if not (label.startswith("[") and "," in label):
        return None
    return _number(label[1:].split(",")[0])


__all__ = [
    "MIN_SLICE_ROWS",
    "SLICE_DROP",
    "TABLE_COLUMNS",
    "SlicePerformance",
    "SliceReference",
    "SliceReport",
    "assign_groups",
    "measure_slices",
]
