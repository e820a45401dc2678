"""``detect_drift``: score every column of a window against a reference, and decide.

Per column, the default method is the KS test (numeric) or the chi-square test (categorical);
integer-valued numeric columns with few distinct values are also compared value by value
(:mod:`.frequency`). Every test comes with an effect size, and p-values are adjusted across
the feature columns' tests (Benjamini-Hochberg by default). A column drifts when a test is
significant after adjustment **and** its effect size reaches the calibrated minimum
(:mod:`.minimum`). The dataset has drifted when the importance-weighted share of drifted
feature columns reaches ``drift_share`` or, with ``multivariate=True``, when the domain
classifier's AUC interval lies above its threshold (:mod:`.dataset`; the report's
``dataset_rule`` names the rule that decided). Prediction columns (the model's output) are
scored the same way but corrected and reported on their own (``prediction_drift``).
Columns run in parallel threads: the sorting that dominates the cost releases the GIL.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> ref = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)})
>>> cur = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)})
>>> detect_drift(ref, cur).dataset_drift
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.drift.base import ColumnKind, DriftResult
from modelpilot.monitoring.drift.binning import (
    Histogram,
    categorical_histogram,
    numeric_histogram,
)
from modelpilot.monitoring.drift.correction import CORRECTIONS, adjust_p_values
from modelpilot.monitoring.drift.dataset import (
    DEFAULT_DRIFT_SHARE,
    check_dataset_options,
    decide_dataset,
)
from modelpilot.monitoring.drift.frequency import ExactValueFrequencies, has_few_integer_values
from modelpilot.monitoring.drift.minimum import MinEffect, check_min_effect
from modelpilot.monitoring.drift.registry import (
    DEFAULT_METHODS,
    MethodSpec,
    get_method,
    method_for,
)
from modelpilot.monitoring.drift.sample import CategoricalCounts, NumericSummary, SortedSample
from modelpilot.monitoring.multivariate import (
    DEFAULT_AUC_THRESHOLD,
    MultivariateDriftResult,
    domain_classifier_drift,
)
from modelpilot.monitoring.profile import (
    ReferenceProfile,
    fit_profile,
    kind_of,
    parallel_map,
    require_columns,
    require_frame,
)
from modelpilot.monitoring.report import ColumnDrift, DriftReport, ExactValuesCheck, Role


@dataclass(frozen=True)
class _Scored:
    row: ColumnDrift
    result: DriftResult | None
    histogram: Histogram | None
    exact: DriftResult | None = None
    exact_n_values: int = 0


def detect_drift(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    prediction: str | Sequence[str] = (),
    method: str | Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    min_effect_size: MinEffect = None,
    multivariate: bool = False,
    importance: Mapping[str, float] | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    auc_threshold: float = DEFAULT_AUC_THRESHOLD,
    seed: int = 0,
    n_jobs: int | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (a DataFrame or a fitted ReferenceProfile).

    ``method`` is one registered name (used for every column whose kind it accepts) or a
    ``{column: name}`` mapping; ``thresholds`` overrides per column (significance level for
    test-based methods, distance for the others). ``min_effect_size`` is ``None`` for the
    calibrated minimum effects (:data:`~modelpilot.monitoring.drift.minimum.MIN_EFFECT`), a
    mapping overriding some of them (``{"ks": 0.2}``), or one number for every check (``0``:
    significance alone). ``multivariate=True`` adds a domain classifier (needs reference
    rows, not a profile), seeded by ``seed``.

    ``dataset_drift`` is decided by the importance-weighted share of drifted feature columns
    reaching ``drift_share`` (``importance``: ``{column: weight}``, e.g. permutation
    importance; unnamed columns weigh zero; ``None``: equal weights; ``drift_share=0``: any
    drifted column), or by the domain classifier's AUC interval lying above
    ``auc_threshold`` (0.5 plus a minimum effect).
    """
    _check_options(alpha, correction, min_effect_size)
    forced = set(categorical)
    profile = _profile(reference, columns, forced, n_jobs)
    names = list(profile.columns) if columns is None else list(columns)
    frame = require_frame(current, "current")
    require_columns(frame, names, "current data")
    roles = _roles(names, prediction)
    specs = _methods(profile, names, method)
    limits = dict(thresholds or {})
    _check_known(limits, names, "thresholds")
    check_dataset_options(importance, [n for n in names if roles[n] == "feature"], drift_share)
    _check_auc_threshold(auc_threshold)

    def score(name: str) -> _Scored:
        spec = specs[name]
        limit = limits.get(name, alpha if spec.uses_p_value else spec.default_threshold)
        return _score_column(name, profile, frame[name], spec, limit, roles[name], min_effect_size)

    scored = parallel_map(score, names, n_jobs)
    rows = _correct(scored, correction)
    features = [r for r in rows if r.role == "feature"]
    predictions = [r for r in rows if r.role == "prediction"]
    domain = (
        _multivariate(reference, frame, profile, features, auc_threshold, seed)
        if multivariate
        else None
    )
    decision = decide_dataset(
        {r.column: r.drifted for r in features if not r.skipped}, importance, drift_share, domain
    )
    return DriftReport(
        columns=rows,
        dataset_drift=decision.drifted,
        alpha=alpha,
        correction=correction,
        n_reference=profile.n_rows,
        n_current=len(frame),
        prediction_drift=any(r.drifted for r in predictions) if predictions else None,
        multivariate=domain,
        histograms={s.row.column: s.histogram for s in scored if s.histogram is not None},
        decision=decision,
    )


def _check_options(alpha: float, correction: str, min_effect_size: MinEffect) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be in (0, 1); got {shown(alpha)}.", field="alpha")
    if correction not in CORRECTIONS:
        raise InvalidInput(
            f"Unknown multiple-testing correction {shown(correction)}; expected one of "
            f"{', '.join(CORRECTIONS)}.",
            field="correction",
        )
    check_min_effect(min_effect_size)


def _check_auc_threshold(auc_threshold: float) -> None:
    if isinstance(auc_threshold, bool) or not 0.5 <= auc_threshold < 1:
        raise InvalidInput(
            f"auc_threshold must be in [0.5, 1) (0.5 plus the smallest domain-classifier "
            f"effect worth an alarm, default {DEFAULT_AUC_THRESHOLD}); got "
            f"{shown(auc_threshold)}.",
            field="auc_threshold",
        )


def _profile(
    reference: pd.DataFrame | ReferenceProfile,
    columns: Sequence[str] | None,
    forced: set[str],
    n_jobs: int | None,
) -> ReferenceProfile:
    if not isinstance(reference, ReferenceProfile):
        return fit_profile(reference, columns=columns, categorical=forced, n_jobs=n_jobs)
    unknown = [c for c in (columns or []) if c not in reference.columns]
    if unknown:
        raise InvalidInput(
            f"Column(s) {shown(unknown)} are not in the reference profile, which has "
            f"{shown(list(reference.columns))}. Refit the profile with these columns.",
            field="columns",
        )
    numeric = sorted(c for c in forced if kind_of(reference.columns.get(c, _EMPTY)) == "numeric")
    if numeric:
        raise InvalidInput(
            f"Column(s) {shown(numeric)} are numeric in the reference profile; column kinds "
            "come from the profile. Refit it with fit_profile(..., categorical=[...]).",
            field="categorical",
        )
    return reference


_EMPTY = CategoricalCounts({})


def _roles(names: list[str], prediction: str | Sequence[str]) -> dict[str, Role]:
    chosen = [prediction] if isinstance(prediction, str) else list(prediction)
    _check_known(dict.fromkeys(chosen, 0.0), names, "prediction")
    return {name: "prediction" if name in chosen else "feature" for name in names}


def _check_known(given: Mapping[str, Any], names: list[str], argument: str) -> None:
    unknown = [k for k in given if k not in names]
    if unknown:
        raise InvalidInput(
            f"{argument} names {shown(unknown)}, which are not among the checked columns "
            f"{shown(names)}.",
            field=argument,
        )


def _methods(
    profile: ReferenceProfile, names: list[str], method: str | Mapping[str, str] | None
) -> dict[str, MethodSpec]:
    kinds = profile.kinds()
    if isinstance(method, Mapping):
        _check_known(method, names, "method")
        return {
            n: method_for(method[n], kinds[n], n)
            if n in method
            else get_method(DEFAULT_METHODS[kinds[n]])
            for n in names
        }
    chosen = get_method(method) if method is not None else None
    return {
        n: chosen
        if chosen is not None and kinds[n] in chosen.kinds
        else get_method(DEFAULT_METHODS[kinds[n]])
        for n in names
    }


def _score_column(
    name: str,
    profile: ReferenceProfile,
    values: pd.Series,
    spec: MethodSpec,
    threshold: float,
    role: Role,
    min_effect_size: MinEffect,
) -> _Scored:
    summary = profile.columns[name]
    kind: ColumnKind = kind_of(summary)
    sample: SortedSample | CategoricalCounts
    if isinstance(summary, NumericSummary):
        sample = SortedSample.from_values(values, where=f"current column {name!r}")
    else:
        sample = CategoricalCounts.from_values(values)
    skip = _skip_reason(summary, sample, spec)
    result: DriftResult | None = None
    exact: DriftResult | None = None
    histogram: Histogram | None = None
    if skip is None:
        options = {"min_effect_size": min_effect_size} if spec.uses_p_value else {}
        result = spec.create(threshold=threshold, **options).fit(summary).score(sample)
        histogram = _histogram(summary, sample)
        if spec.name == "ks" and isinstance(summary, NumericSummary):
            exact = _exact_values(summary, sample, threshold, min_effect_size)
    constant = isinstance(summary, NumericSummary) and summary.is_constant
    ref_total = summary.n + summary.n_null
    row = ColumnDrift(
        column=name,
        kind=kind,
        role=role,
        method=spec.name,
        statistic=result.statistic if result else None,
        p_value=result.p_value if result else None,
        p_value_adjusted=None,
        threshold=threshold,
        drifted=result.drifted if result else False,
        effect_size=result.effect_size if result else None,
        min_effect_size=result.min_effect_size if result else None,
        effect=result.effect if result else None,
        effects=dict(result.effects) if result else {},
        check=result.check if result else None,
        status="ok" if skip is None else f"skipped: {skip}",
        n_reference=ref_total,
        n_current=len(values),
        null_share_reference=summary.n_null / ref_total if ref_total else 0.0,
        null_share_current=sample.n_null / len(values) if len(values) else 0.0,
        note="constant in reference" if constant and skip is None else None,
    )
    return _Scored(row, result, histogram, exact, _n_values(summary) if exact else 0)


def _n_values(summary: NumericSummary | CategoricalCounts) -> int:
    return int(summary.values.size) if isinstance(summary, NumericSummary) else len(summary.counts)


def _exact_values(
    summary: NumericSummary,
    sample: SortedSample | CategoricalCounts,
    threshold: float,
    min_effect_size: MinEffect,
) -> DriftResult | None:
    if not has_few_integer_values(summary) or not isinstance(sample, SortedSample):
        return None
    check = ExactValueFrequencies(threshold=threshold, min_effect_size=min_effect_size)
    return check.fit(summary).score(sample)


UNTESTED = {
    "dates": "dates or times move on with the calendar (monitor features derived from them)",
    "identifier": "every value in the reference is distinct: identifiers or free text, new "
    "in every window (categorical=[...] tests it anyway)",
}


def _skip_reason(
    summary: NumericSummary | CategoricalCounts,
    sample: SortedSample | CategoricalCounts,
    spec: MethodSpec,
) -> str | None:
    if isinstance(summary, CategoricalCounts) and summary.untested:
        return UNTESTED.get(summary.untested, f"not tested ({summary.untested})")
    if summary.n == 0:
        return "all null in reference"
    if sample.n == 0:
        return "all null in current window"
    if spec.name == "wasserstein" and isinstance(summary, NumericSummary) and summary.std == 0:
        return "constant reference (normalised Wasserstein undefined; use ks or psi)"
    return None


def _histogram(
    summary: NumericSummary | CategoricalCounts, sample: SortedSample | CategoricalCounts
) -> Histogram:
    if isinstance(summary, NumericSummary) and isinstance(sample, SortedSample):
        return numeric_histogram(summary, sample)
    assert isinstance(summary, CategoricalCounts) and isinstance(sample, CategoricalCounts)
    return categorical_histogram(summary, sample)


def _correct(scored: list[_Scored], correction: str) -> list[ColumnDrift]:
    """Adjust p-values within each role (every test of every column is one hypothesis) and
    re-decide: a column drifts when its own test or its exact-value check does."""
    rows = [s.row for s in scored]
    for role in ("feature", "prediction"):
        tests = [
            (i, s.exact_n_values, part, result)
            for i, s in enumerate(scored)
            if s.row.role == role
            for part, result in (("main", s.result), ("exact", s.exact))
            if result is not None and result.p_value is not None
        ]
        adjusted = adjust_p_values([r.p_value or 0.0 for _, _, _, r in tests], correction)
        for (i, n_values, part, result), p_adj in zip(tests, adjusted, strict=True):
            decided = result.with_p_value(p_adj)
            if part == "main":
                rows[i] = replace(rows[i], p_value_adjusted=p_adj, drifted=decided.drifted)
            else:
                check = _exact_check(decided, result.p_value or 0.0, p_adj, n_values)
                rows[i] = replace(
                    rows[i], exact_values=check, drifted=rows[i].drifted or check.drifted
                )
    return rows


def _exact_check(
    decided: DriftResult, p_value: float, p_adj: float, n_values: int
) -> ExactValuesCheck:
    return ExactValuesCheck(
        statistic=decided.statistic,
        p_value=p_value,
        p_value_adjusted=p_adj,
        drifted=decided.drifted,
        effect=decided.effect or "jensenshannon",
        effect_size=decided.effect_size or 0.0,
        min_effect_size=decided.min_effect_size or 0.0,
        effects=dict(decided.effects),
        n_values=n_values,
    )


def _multivariate(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    profile: ReferenceProfile,
    features: list[ColumnDrift],
    auc_threshold: float,
    seed: int,
) -> MultivariateDriftResult:
    if isinstance(reference, ReferenceProfile):
        raise InvalidInput(
            "multivariate=True needs the reference rows, not a reference profile: a domain "
            "classifier trains on both. Pass the reference DataFrame.",
            field="multivariate",
        )
    names = [r.column for r in features if not r.skipped]
    kinds = profile.kinds()
    return domain_classifier_drift(
        reference,
        current,
        columns=names,
        categorical=[n for n in names if kinds[n] == "categorical"],
        threshold=auc_threshold,
        seed=seed,
    )
