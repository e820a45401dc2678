"""Data validation: rules inferred from a reference dataset, plus rules people declare.

Inferred rules are deliberately forgiving (ranges widened by a margin, categories seen at
least once, null rates with slack) so new data that looks like the reference passes; declared
rules say exactly what a person knows ("age between 18 and 120", "plan in basic/premium").
Validation never changes data: it returns which rules failed, on how many rows, with examples.

>>> ref = pd.DataFrame({"age": [20, 30, 40], "plan": ["a", "b", "a"]})
>>> rules = infer_rules(ref)
>>> result = validate(pd.DataFrame({"age": [25, 300], "plan": ["a", "z"]}), rules)
>>> [(f.rule.column, f.rule.kind, f.failed_rows) for f in result.failures]
[('age', 'range', 1), ('plan', 'allowed_values', 1)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from modelpilot.errors import InvalidInput

RuleKind = Literal[
    "column_present", "dtype", "range", "allowed_values", "max_null_share", "not_null"
]
_RANGE_MARGIN = 0.1  # widen inferred ranges by 10% of their span on each side
_NULL_SLACK = 0.05
_MAX_CATEGORIES = 200
_EXAMPLES = 5


class Rule(BaseModel):
    """One check on one column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    kind: RuleKind
    min: float | None = None
    max: float | None = None
    values: tuple[Any, ...] | None = None
    share: float | None = None
    dtype: Literal["numeric", "string", "boolean", "datetime"] | None = None
    source: Literal["inferred", "declared"] = "inferred"

    def describe(self) -> str:
        """The rule as a sentence."""
        if self.kind == "range":
            return f"{self.column} between {self.min:g} and {self.max:g}"
        if self.kind == "allowed_values":
            shown = ", ".join(map(str, (self.values or ())[:8]))
            more = "…" if len(self.values or ()) > 8 else ""
            return f"{self.column} in {{{shown}{more}}}"
        if self.kind == "max_null_share":
            return f"{self.column} missing in at most {self.share:.1%} of rows"
        if self.kind == "dtype":
            return f"{self.column} is {self.dtype}"
        if self.kind == "not_null":
            return f"{self.column} is never missing"
        return f"column {self.column} is present"


@dataclass(frozen=True)
class Failure:
    """A rule that failed, how often, and a few offending values with their row numbers."""

    rule: Rule
    failed_rows: int
    total_rows: int
    examples: list[tuple[int, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationResult:
    """All failures; ``passed`` when there are none."""

    rules_checked: int
    rows: int
    failures: list[Failure]

    @property
    def passed(self) -> bool:
        """True when every rule held."""
        return not self.failures

    def to_frame(self) -> pd.DataFrame:
        """One row per failed rule."""
        return pd.DataFrame(
            [
                {
                    "column": f.rule.column,
                    "rule": f.rule.describe(),
                    "source": f.rule.source,
                    "failed_rows": f.failed_rows,
                    "share": f.failed_rows / max(f.total_rows, 1),
                    "examples": "; ".join(f"row {i}: {v!r}" for i, v in f.examples),
                }
                for f in self.failures
            ],
            columns=["column", "rule", "source", "failed_rows", "share", "examples"],
        )


def infer_rules(reference: pd.DataFrame) -> list[Rule]:
    """Rules that the reference data satisfies, with margins for ordinary variation."""
    rules: list[Rule] = []
    for name in reference.columns:
        column = str(name)
        series = reference[name]
        rules.append(Rule(column=column, kind="column_present"))
        kind = _kind(series)
        rules.append(Rule(column=column, kind="dtype", dtype=kind))
        null_share = float(series.isna().mean()) if len(series) else 0.0
        rules.append(
            Rule(column=column, kind="max_null_share", share=min(1.0, null_share + _NULL_SLACK))
        )
        present = series.dropna()
        if present.empty:
            continue
        if kind == "numeric":
            lo, hi = float(present.min()), float(present.max())
            margin = (hi - lo) * _RANGE_MARGIN
            rules.append(Rule(column=column, kind="range", min=lo - margin, max=hi + margin))
        elif kind in ("string", "boolean"):
            values = sorted(present.astype(str).unique().tolist())
            if len(values) <= _MAX_CATEGORIES:
                rules.append(Rule(column=column, kind="allowed_values", values=tuple(values)))
    return rules


def declared_rules(data: Iterable[dict[str, Any]]) -> list[Rule]:
    """Rules from a YAML list, e.g. ``[{column: age, kind: range, min: 18, max: 120}]``."""
    rules = []
    for index, item in enumerate(data):
        try:
            rules.append(Rule.model_validate({**item, "source": "declared"}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InvalidInput(
                f"Validation rule {index + 1}: {first['msg']} (at {where}).", field=where
            ) from exc
    return rules


def validate(data: pd.DataFrame, rules: Sequence[Rule]) -> ValidationResult:
    """Check every rule; columns that are missing fail their presence rule and skip the rest."""
    failures: list[Failure] = []
    missing = {
        r.column for r in rules if r.kind == "column_present" and r.column not in data.columns
    }
    for rule in rules:
        if rule.column in missing:
            if rule.kind == "column_present":
                failures.append(Failure(rule, len(data), len(data)))
            continue
        if rule.column not in data.columns:
            failures.append(Failure(rule, len(data), len(data)))
            continue
        failure = _check(rule, data[rule.column])
        if failure is not None:
            failures.append(failure)
    return ValidationResult(len(rules), len(data), failures)


def row_flags(data: pd.DataFrame, rules: Sequence[Rule]) -> list[list[str]]:
    """For each row, the rules it breaks (row-level kinds only), for flagging live requests."""
    flags: list[list[str]] = [[] for _ in range(len(data))]
    for rule in rules:
        if (
            rule.kind not in ("range", "allowed_values", "not_null")
            or rule.column not in data.columns
        ):
            continue
        bad = _bad_mask(rule, data[rule.column])
        for index in np.flatnonzero(bad):
            flags[index].append(rule.describe())
    return flags


def _check(rule: Rule, series: pd.Series) -> Failure | None:
    total = len(series)
    if rule.kind == "max_null_share":
        nulls = int(series.isna().sum())
        return (
            Failure(rule, nulls, total) if total and nulls / total > (rule.share or 0.0) else None
        )
    if rule.kind == "dtype":
        return (
            None
            if _kind(series) == rule.dtype or series.dropna().empty
            else Failure(rule, total, total, [(0, str(series.dtype))])
        )
    if rule.kind == "column_present":
        return None
    bad = _bad_mask(rule, series)
    count = int(bad.sum())
    if count == 0:
        return None
    rows = np.flatnonzero(bad)[:_EXAMPLES]
    return Failure(rule, count, total, [(int(i), series.iloc[i]) for i in rows])


def _bad_mask(rule: Rule, series: pd.Series) -> np.ndarray:
    present = series.notna().to_numpy()
    if rule.kind == "not_null":
        return ~present
    if rule.kind == "range":
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            outside = (
                (numbers < (rule.min if rule.min is not None else -np.inf))
                | (numbers > (rule.max if rule.max is not None else np.inf))
                | np.isnan(numbers)
            )
        return np.asarray(outside & present, dtype=bool)
    if rule.kind == "allowed_values":
        allowed = {str(v) for v in rule.values or ()}
        return (~series.astype(str).isin(allowed).to_numpy()) & present
    return np.zeros(len(series), dtype=bool)


def _kind(series: pd.Series) -> Literal["numeric", "string", "boolean", "datetime"]:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"
