"""Promotion gates: check an :class:`EvaluationResult` against a :class:`GatePolicy`.

Each rule of the policy becomes one :class:`GateCheck` (name, passed, value, threshold,
message); the verdict passes when every check does. Gates fail closed: a rule whose evidence
is missing (no baseline evaluated, latency not measured, a metric the task does not have)
is a failed check that says what to pass, never a silent pass. The one exception is a
baseline section with ``required: false``, which passes with a note when no baseline exists
(the first version of a model has no champion).

Absolute bounds (``metrics``, ``slices.metrics``, ``calibration``, ``fairness``) compare point
values. Comparisons with the baseline are non-inferiority tests: the one-sided lower
confidence bound of the paired-bootstrap improvement must be at least ``−max_drop``
(``slices.max_drop_vs_baseline`` compares point differences unless ``slices.confidence`` is
set, because slices are small and their bounds wide).

A verdict says whether the checks passed; it never promotes anything.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from modelpilot.evaluation import evaluate, parse_policy
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x": rng.normal(size=500)})
>>> df["y"] = (df["x"] + rng.normal(size=500) > 0).astype(int)
>>> result = evaluate(LogisticRegression().fit(df[["x"]], df["y"]), df, "y", n_bootstrap=100,
...                   robustness=False, explain=False)
>>> verdict = check_gate(parse_policy("metrics: {roc_auc: {min: 0.99}}"), result)
>>> verdict.passed, [c.name for c in verdict.failed]
(False, ['metrics.roc_auc.min'])
"""

from __future__ import annotations

from collections.abc import Mapping

from modelpilot.errors import InvalidInput
from modelpilot.evaluation.bootstrap import MetricValue
from modelpilot.evaluation.comparison import Difference
from modelpilot.evaluation.metrics import METRICS
from modelpilot.evaluation.policy import Bound, FidelityRules, GatePolicy, SliceRules
from modelpilot.evaluation.result import EvaluationResult
from modelpilot.evaluation.risk_gates import risk_checks
from modelpilot.evaluation.slices import SliceResult
from modelpilot.evaluation.verdict import GateCheck, GateVerdict, fmt


def check_gate(
    policy: GatePolicy,
    result: EvaluationResult,
    *,
    latency_p99_ms: float | None = None,
    package_size_bytes: int | None = None,
    fidelity: Mapping[str, float | None] | None = None,
) -> GateVerdict:
    """Run every rule of ``policy`` on ``result`` (plus measured latency and package size).

    Use :func:`~modelpilot.evaluation.measure_latency` for ``latency_p99_ms``; the package size
    is the stored model package's size in bytes; ``fidelity`` is what ``modelpilot optimize``
    stored on a candidate (``agreement``, ``max_abs_proba_diff``).
    """
    if not isinstance(policy, GatePolicy):
        raise InvalidInput(
            f"check_gate needs a GatePolicy; got {type(policy).__name__}. "
            "Load one with load_policy(path).",
            field="policy",
        )
    if not isinstance(result, EvaluationResult):
        raise InvalidInput(
            f"check_gate needs an EvaluationResult; got {type(result).__name__}. "
            "Make one with evaluate(model, data, target).",
            field="result",
        )
    checks: list[GateCheck] = []
    for name, bound in policy.metrics.items():
        checks += bound_checks(f"metrics.{name}", name, result.metrics.get(name), bound, result)
    if policy.baseline is not None:
        checks += _baseline_checks(policy, result)
    if policy.slices is not None:
        checks += _slice_checks(policy.slices, result)
    if policy.calibration is not None:
        checks.append(_calibration_check(policy.calibration.max_ece, result))
    if policy.fairness is not None:
        checks += _fairness_checks(policy, result)
    if policy.robustness is not None:
        checks += _robustness_checks(policy, result)
    if policy.latency is not None:
        checks.append(_latency_check(policy.latency.max_p99_ms, latency_p99_ms))
    if policy.package is not None:
        checks.append(_package_check(policy.package.max_size_mb, package_size_bytes))
    if policy.fidelity is not None:
        checks += fidelity_checks(policy.fidelity, fidelity)
    checks += risk_checks(policy, result)
    return GateVerdict(policy.name, checks, policy.to_dict())


def bound_checks(
    name: str, metric: str, value: MetricValue | None, bound: Bound, result: EvaluationResult
) -> list[GateCheck]:
    """``name.min`` / ``name.max`` checks of a point value against a bound."""
    out = []
    for side, threshold in (("min", bound.min), ("max", bound.max)):
        if threshold is None:
            continue
        if value is None or value.value is None:
            out.append(GateCheck(f"{name}.{side}", False, None, threshold, _absent(metric, result)))
            continue
        v = value.value
        ok = v >= threshold if side == "min" else v <= threshold
        word = "at least" if side == "min" else "at most"
        message = f"{metric} = {fmt(v)}; required {word} {fmt(threshold)}"
        out.append(GateCheck(f"{name}.{side}", ok, v, threshold, message))
    return out


def _absent(metric: str, result: EvaluationResult) -> str:
    if metric in result.metrics:
        return f"{metric} is undefined on this data (e.g. one class only)"
    return (
        f"{metric} was not computed for this {result.task} evaluation; computed: "
        f"{', '.join(result.metrics) or 'none'}"
    )


def _baseline_checks(policy: GatePolicy, result: EvaluationResult) -> list[GateCheck]:
    rules = policy.baseline
    assert rules is not None
    if result.comparison is None:
        if rules.required:
            message = "no baseline was evaluated; pass baseline=<champion> to evaluate()"
            return [GateCheck("baseline", False, None, None, message)]
        return [GateCheck("baseline", True, None, None, "no baseline; skipped (required: false)")]
    out = []
    for metric, margin in rules.max_drop.items():
        diff = result.comparison.metrics.get(metric)
        name = f"baseline.{metric}"
        if diff is None or diff.difference is None:
            out.append(GateCheck(name, False, None, -margin, _absent(metric, result)))
            continue
        bound = diff.improvement_bound(rules.confidence)
        ok = bound is not None and bound >= -margin
        out.append(
            GateCheck(
                name, ok, bound, -margin, _noninferiority(diff, bound, rules.confidence, margin)
            )
        )
    return out


def _noninferiority(diff: Difference, bound: float | None, confidence: float, margin: float) -> str:
    return (
        f"{diff.metric}: model {fmt(diff.model)} vs baseline {fmt(diff.baseline)}; improvement "
        f"{fmt(diff.improvement)}, one-sided {confidence:.0%} lower bound {fmt(bound)}, "
        f"allowed drop {fmt(margin)}"
    )


def _slice_checks(rules: SliceRules, result: EvaluationResult) -> list[GateCheck]:
    if not result.slices:
        message = "no slices were evaluated; pass slices=[...] to evaluate()"
        return [GateCheck("slices", False, None, None, message)]
    sliced = list(dict.fromkeys(s.column for s in result.slices))
    columns = rules.columns if rules.columns is not None else sliced
    out = [
        GateCheck(f"slices.{c}", False, None, None, f"'{c}' was not sliced; sliced: {sliced}")
        for c in columns
        if c not in sliced
    ]
    chosen = [s for s in result.slices if s.column in columns]
    judged = [s for s in chosen if rules.include_small or not s.is_small]
    small = [f"{s.column}={s.group}" for s in chosen if s not in judged]
    tail = f"; {len(small)} small slice(s) not judged: {', '.join(small)}" if small else ""
    for metric, bound in rules.metrics.items():
        for side, threshold in (("min", bound.min), ("max", bound.max)):
            if threshold is not None:
                out.append(_slice_bound(metric, side, threshold, judged, result, tail))
    for metric, margin in rules.max_drop_vs_baseline.items():
        out.append(_slice_drop(metric, margin, rules.confidence, judged, result, tail))
    return out


def _worst(
    values: dict[str, float | None], threshold: float, is_floor: bool, what: str, tail: str
) -> tuple[bool, float | None, str]:
    """(passed, worst value, message) over slices; undefined values are listed, not judged.

    ``is_floor``: values must be at least ``threshold`` (else at most).
    """
    defined = {k: v for k, v in values.items() if v is not None}
    undefined = [k for k, v in values.items() if v is None]
    if not defined:
        return False, None, f"{what}: no slice has a value{tail}"
    label = (min if is_floor else max)(defined, key=lambda k: defined[k])
    bad = [k for k, v in defined.items() if (v < threshold if is_floor else v > threshold)]
    message = f"{what}: worst slice {label} = {fmt(defined[label])}, threshold {fmt(threshold)}"
    if bad:
        message += f"; {len(bad)} of {len(defined)} slices fail: {', '.join(bad)}"
    if undefined:
        message += f"; undefined in {', '.join(undefined)}"
    return not bad, defined[label], message + tail


def _slice_bound(
    metric: str,
    side: str,
    threshold: float,
    judged: list[SliceResult],
    result: EvaluationResult,
    tail: str,
) -> GateCheck:
    name = f"slices.{metric}.{side}"
    if metric not in result.metrics:
        return GateCheck(name, False, None, threshold, _absent(metric, result))
    values = {f"{s.column}={s.group}": s.metrics[metric].value for s in judged}
    passed, worst, message = _worst(values, threshold, side == "min", f"{metric} {side}", tail)
    return GateCheck(name, passed, worst, threshold, message)


def _slice_drop(
    metric: str,
    margin: float,
    confidence: float | None,
    judged: list[SliceResult],
    result: EvaluationResult,
    tail: str,
) -> GateCheck:
    name = f"slices.{metric}.max_drop_vs_baseline"
    if result.comparison is None:
        message = "no baseline was evaluated; pass baseline=<champion> to evaluate()"
        return GateCheck(name, False, None, -margin, message)
    keys = {(s.column, s.group) for s in judged}
    values = {
        f"{d.column}={d.group}": d.improvement_bound(confidence) if confidence else d.improvement
        for d in result.comparison.slices
        if d.metric == metric and (d.column, d.group) in keys
    }
    what = f"{metric} improvement vs baseline" + (
        f" (one-sided {confidence:.0%} lower bound)" if confidence else ""
    )
    passed, worst, message = _worst(values, -margin, True, what, tail)
    return GateCheck(name, passed, worst, -margin, message)


def _calibration_check(max_ece: float, result: EvaluationResult) -> GateCheck:
    if result.calibration is None or result.calibration.ece.value is None:
        why = "regression" if result.task == "regression" else "no predict_proba"
        return GateCheck("calibration.ece", False, None, max_ece, f"no calibration ({why})")
    ece = result.calibration.ece.value
    message = f"ECE = {fmt(ece)} ({result.calibration.kind}); required at most {fmt(max_ece)}"
    return GateCheck("calibration.ece", ece <= max_ece, ece, max_ece, message)


def _fairness_checks(policy: GatePolicy, result: EvaluationResult) -> list[GateCheck]:
    rules = policy.fairness
    assert rules is not None
    attributes = rules.attributes if rules.attributes is not None else list(result.fairness)
    if not attributes:
        message = "no sensitive attribute was evaluated; pass sensitive=[...] to evaluate()"
        return [GateCheck("fairness", False, None, None, message)]
    out = []
    for attribute in attributes:
        found = result.fairness.get(attribute)
        for label, threshold in (
            ("demographic_parity_difference", rules.max_demographic_parity_difference),
            ("equalized_odds_difference", rules.max_equalized_odds_difference),
        ):
            if threshold is None:
                continue
            name = f"fairness.{attribute}.{label}"
            mv = None if found is None else getattr(found, label)
            if mv is None or mv.value is None:
                why = (
                    f"'{attribute}' was not evaluated; pass sensitive=[{attribute!r}]"
                    if found is None
                    else f"{label} is not defined here ({found.note or 'undefined'})"
                )
                out.append(GateCheck(name, False, None, threshold, why))
                continue
            message = (
                f"{label} for {attribute} = {fmt(mv.value)}; required at most {fmt(threshold)}"
            )
            out.append(GateCheck(name, mv.value <= threshold, mv.value, threshold, message))
    return out


def _robustness_checks(policy: GatePolicy, result: EvaluationResult) -> list[GateCheck]:
    rules = policy.robustness
    assert rules is not None
    if not result.robustness:
        message = "robustness was not evaluated; call evaluate(..., robustness=True)"
        return [GateCheck("robustness", False, None, rules.max_drop, message)]
    by_name = {s.name: s for s in result.robustness}
    names = rules.scenarios if rules.scenarios is not None else list(by_name)
    out = []
    for name in names:
        scenario = by_name.get(name)
        check = f"robustness.{name}"
        if scenario is None:
            message = f"no scenario '{name}'; evaluated: {', '.join(by_name)}"
            out.append(GateCheck(check, False, None, rules.max_drop, message))
        elif scenario.status == "skipped":
            out.append(GateCheck(check, True, None, rules.max_drop, f"skipped: {scenario.message}"))
        elif scenario.status == "failed" or scenario.change is None:
            message = f"the model failed under {name}: {scenario.message}"
            out.append(GateCheck(check, rules.allow_failures, None, rules.max_drop, message))
        else:
            drop = (
                -scenario.change if METRICS[scenario.metric].higher_is_better else scenario.change
            )
            message = (
                f"{scenario.metric} {fmt(scenario.clean_value)} → {fmt(scenario.value)} "
                f"(drop {fmt(drop)}); allowed drop {fmt(rules.max_drop)}"
            )
            out.append(GateCheck(check, drop <= rules.max_drop, drop, rules.max_drop, message))
    return out


def _latency_check(max_p99_ms: float, measured: float | None) -> GateCheck:
    if measured is None:
        message = "latency not measured; pass latency_p99_ms=measure_latency(model, row).p99_ms"
        return GateCheck("latency.p99_ms", False, None, max_p99_ms, message)
    message = f"p99 {fmt(measured)} ms for one row; required at most {fmt(max_p99_ms)} ms"
    return GateCheck("latency.p99_ms", measured <= max_p99_ms, measured, max_p99_ms, message)


def _package_check(max_size_mb: float, size_bytes: int | None) -> GateCheck:
    if size_bytes is None:
        message = "package size unknown; pass package_size_bytes="
        return GateCheck("package.size_mb", False, None, max_size_mb, message)
    size_mb = size_bytes / 1e6
    message = f"package {fmt(size_mb)} MB; required at most {fmt(max_size_mb)} MB"
    return GateCheck("package.size_mb", size_mb <= max_size_mb, size_mb, max_size_mb, message)


def fidelity_checks(
    rules: FidelityRules, fidelity: Mapping[str, float | None] | None
) -> list[GateCheck]:
    """``fidelity.min_agreement`` / ``fidelity.max_abs_proba_diff`` on a candidate's stored
    fidelity; a version that was not made by ``modelpilot optimize`` fails them (no evidence).

    >>> rules = FidelityRules(min_agreement=0.999, max_abs_proba_diff=0.001)
    >>> [c.passed for c in fidelity_checks(rules, {"agreement": 1.0, "max_abs_proba_diff": 0.01})]
    [True, False]
    """
    out = []
    for key, threshold, is_floor in (
        ("agreement", rules.min_agreement, True),
        ("max_abs_proba_diff", rules.max_abs_proba_diff, False),
    ):
        if threshold is None:
            continue
        name = f"fidelity.{'min_agreement' if is_floor else key}"
        if fidelity is None:
            message = "no stored fidelity: this version was not made by modelpilot optimize"
            out.append(GateCheck(name, False, None, threshold, message))
            continue
        value = fidelity.get(key)
        if value is None and is_floor and "max_abs_proba_diff" in fidelity:
            message = "class agreement is not defined for a regressor; judged by the difference"
            out.append(GateCheck(name, True, None, threshold, message))
            continue
        if value is None:
            out.append(GateCheck(name, False, None, threshold, f"{key} was not measured"))
            continue
        ok = value >= threshold if is_floor else value <= threshold
        word = "at least" if is_floor else "at most"
        message = f"{key} = {fmt(value)} against the source; required {word} {fmt(threshold)}"
        out.append(GateCheck(name, ok, value, threshold, message))
    return out
