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
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from modelpilot.data.risks import DataRisks
from modelpilot.errors import InvalidInput

RuleKind = Literal[
    "column_present",
    "dtype",
    "range",
    "allowed_values",
    "max_null_share",
    "not_null",
    # dataset-level rules on the data risks (modelpilot.data.risks)
    "max_label_issue_share",
    "min_minority_share",
    "max_outlier_share",
    "no_leakage",
    "max_pii_columns",
]
# Rules judged on a DataRisks assessment rather than on column values; ``column`` names the
# label for the label rules and is ignored by the others.
RISK_KINDS = (
    "max_label_issue_share",
    "min_minority_share",
    "max_outlier_share",
    "no_leakage",
    "max_pii_columns",
)
_RANGE_MARGIN = 0.1  # widen inferred ranges by 10% of their span on each side
_NULL_SLACK = 0.05
_MAX_CATEGORIES = 200
_EXAMPLES = 5


class Rule(BaseModel):
    """One check on one column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = "*"
    kind: RuleKind
    min: float | None = None
    max: float | None = None
    values: tuple[Any, ...] | None = None
    share: float | None = None
    dtype: Literal["numeric", "string", "boolean", "datetime"] | None = None
    against: str | None = None
    source: Literal["inferred", "declared"] = "inferred"

    @model_validator(mode="after")
    def _has_its_fields(self) -> Rule:
        needs = {
            "range": ("min", "max"),
            "allowed_values": ("values",),
            "max_null_share": ("share",),
            "dtype": ("dtype",),
            "max_label_issue_share": ("share",),
            "min_minority_share": ("share",),
            "max_outlier_share": ("share",),
            "max_pii_columns": ("max",),
            "no_leakage": ("against",),
        }.get(self.kind, ())
        if needs and all(getattr(self, n) is None for n in needs):
            raise ValueError(f"a {self.kind} rule needs {' or '.join(needs)}")
        if self.kind in ("max_label_issue_share", "min_minority_share") and self.column == "*":
            raise ValueError(f"a {self.kind} rule needs column: <the label column>")
        if self.share is not None and not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must be between 0 and 1; got {self.share}")
        return self

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
        if self.kind in RISK_KINDS:
            return _describe_risk(self)
        return f"column {self.column} is present"


@dataclass(frozen=True)
class Failure:
    """A rule that failed, how often, and a few offending values with their row numbers."""

    rule: Rule
    failed_rows: int
    total_rows: int
    examples: list[tuple[int, Any]] = field(default_factory=list)

    def describe_examples(self) -> str:
        """``row 3: 'abc'; …`` (a dataset-level finding, numbered -1, is shown as text)."""
        return "; ".join(f"row {i}: {v!r}" if i >= 0 else str(v) for i, v in self.examples)


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
                    "examples": f.describe_examples(),
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


def validate(
    data: pd.DataFrame, rules: Sequence[Rule], *, risks: DataRisks | None = None
) -> ValidationResult:
    """Check every rule; columns that are missing fail their presence rule and skip the rest.

    Dataset-level rules (``max_label_issue_share``, ``no_leakage``, ``max_pii_columns``, …)
    are judged on ``risks`` (:func:`modelpilot.data.risks.assess_risks` on ``data``); without
    it, or when the assessment lacks what a rule needs, the rule fails and says so.
    """
    failures: list[Failure] = []
    missing = {
        r.column for r in rules if r.kind == "column_present" and r.column not in data.columns
    }
    for rule in rules:
        if rule.kind in RISK_KINDS:
            failure = _check_risk(rule, risks, len(data))
            if failure is not None:
                failures.append(failure)
            continue
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


def _describe_risk(rule: Rule) -> str:
    if rule.kind == "max_label_issue_share":
        return f"likely label errors in {rule.column} in at most {rule.share:.1%} of rows"
    if rule.kind == "min_minority_share":
        return f"the rarest class of {rule.column} is at least {rule.share:.1%} of rows"
    if rule.kind == "max_outlier_share":
        return f"outliers in at most {rule.share:.1%} of rows"
    if rule.kind == "no_leakage":
        return f"no row also in {rule.against}"
    return f"personal data in at most {rule.max:g} column(s)"


def _check_risk(rule: Rule, risks: DataRisks | None, total: int) -> Failure | None:
    """A dataset-level rule on a risk assessment; missing evidence fails (with the reason
    as the failure's one example)."""
    if risks is None:
        return Failure(rule, total, total, [(-1, "no data-risk assessment was made")])
    found, why = _risk_value(rule, risks)
    if found is None:
        return Failure(rule, total, total, [(-1, why)])
    failed, rows = found
    return (
        None if failed == 0 else Failure(rule, failed, total, [(i, why) for i in rows[:_EXAMPLES]])
    )


def _risk_value(rule: Rule, risks: DataRisks) -> tuple[tuple[int, list[int]] | None, str]:
    """((failing count, example rows) or None when not assessed, a reason/example text)."""
    share = rule.share if rule.share is not None else 0.0
    if rule.kind == "max_label_issue_share":
        issues = risks.label_issues
        if issues is None or risks.label != rule.column:
            return None, f"label issues of {rule.column!r} were not checked"
        bad = issues["share"] > share
        return ((issues["count"], issues["rows"]) if bad else (0, [])), "likely label error"
    if rule.kind == "min_minority_share":
        balance = risks.class_balance
        if balance is None or risks.label != rule.column:
            return None, f"class balance of {rule.column!r} was not measured"
        bad = balance["minority_share"] < share
        what = f"class {balance['minority_class']!r} is {balance['minority_share']:.1%} of rows"
        return ((1, [-1]) if bad else (0, [])), what
    if rule.kind == "max_outlier_share":
        out = risks.outliers
        if not out:
            return None, "outliers were not checked"
        return ((out["count"], out["rows"]) if out["share"] > share else (0, [])), "outlier"
    if rule.kind == "no_leakage":
        leak = risks.leakage
        # "churn-test" names the newest version, which the assessment records as name@version
        if leak is None or rule.against not in (leak["against"], leak["against"].split("@")[0]):
            return None, f"leakage against {rule.against!r} was not checked"
        rows = [e["row"] for e in leak["examples"]]
        return (leak["count"], rows), f"also in {rule.against}"
    limit = rule.max if rule.max is not None else 0.0
    columns = ", ".join(f"{p['column']} ({p['kind']})" for p in risks.pii)
    return ((len(risks.pii), [-1]) if len(risks.pii) > limit else (0, [])), columns
