"""The dataset verdict: importance-weighted share of drifted columns, the domain classifier's
AUC interval, and the report naming the rule that decided."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from modelpilot.errors import InvalidInput
from modelpilot.evaluation import evaluate
from modelpilot.monitoring import DriftReport, detect_drift
from modelpilot.monitoring.drift.dataset import weighted_share
from modelpilot.monitoring.multivariate import auc_interval
from modelpilot.monitoring.report import render_html

COLUMNS = ["a", "b", "c", "d", "e"]


def window(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({name: rng.normal(size=n) for name in COLUMNS})


@pytest.fixture(scope="module")
def importance() -> dict[str, float]:
    """Permutation importance from a real evaluation of a model that leans on 'a'."""
    rng = np.random.default_rng(3)
    data = window(rng, 2000)
    logit = 3 * data["a"] + 0.5 * data["b"] + 0.5 * data["c"] + 0.5 * data["d"]
    data["y"] = (logit + rng.logistic(size=2000) > 0).astype(int)
    model = LogisticRegression().fit(data[COLUMNS], data["y"])
    result = evaluate(model, data, "y", n_bootstrap=0, robustness=False, seed=0)
    assert result.explanations is not None
    return {f.feature: f.importance for f in result.explanations.permutation}


def test_a_shift_in_an_important_column_decides_dataset_drift(importance: dict[str, float]):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    reference, current = window(rng, 5000), window(rng, 5000)
    current["a"] += 0.3
    report = detect_drift(reference, current, importance=importance)
    assert report.drifted_columns == ["a"]
    assert report.dataset_drift and report.dataset_rule == "importance_share"
    assert report.decision is not None and report.decision.weights == "importance"
    assert report.decision.weighted_share == pytest.approx(report.decision.column_weights["a"])
    assert report.decision.weighted_share >= 0.5


def test_the_same_shift_in_an_unimportant_column_does_not_trip_the_share_rule(  # type: ignore[no-untyped-def]
    importance: dict[str, float],
):
    rng = np.random.default_rng(4)
    reference, current = window(rng, 5000), window(rng, 5000)
    current["e"] += 0.3
    report = detect_drift(reference, current, importance=importance)
    assert report.drifted_columns == ["e"]  # the column still drifts, and says so
    assert not report.dataset_drift and report.dataset_rule == "none"
    assert report.decision is not None and report.decision.weighted_share < 0.05
    # Without weights the one drifted column is a fifth; drift_share=0 is the old rule.
    assert detect_drift(reference, current).decision.weighted_share == pytest.approx(0.2)  # type: ignore[union-attr]
    assert detect_drift(reference, current, drift_share=0).dataset_rule == "importance_share"


def pairs(rng: np.random.Generator, n: int, rho: float) -> pd.DataFrame:
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": y, "z": rng.normal(size=n)})


def test_a_flipped_correlation_with_unchanged_marginals_is_decided_by_the_domain_classifier():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(8)
    reference, current = pairs(rng, 2000, 0.7), pairs(rng, 2000, -0.7)
    report = detect_drift(reference, current, multivariate=True, seed=0)
    assert report.drifted_columns == []
    assert report.dataset_drift and report.dataset_rule == "domain_classifier"
    decision = report.decision
    assert decision is not None and decision.weighted_share == 0.0
    assert decision.auc_lower is not None and decision.auc_upper is not None
    assert 0.55 < decision.auc_lower < decision.auc < decision.auc_upper  # type: ignore[operator]
    assert report.to_dict()["dataset_decision"]["auc_lower"] == decision.auc_lower
    assert "Dataset rule <b>domain_classifier</b>" in render_html(report)


@pytest.mark.parametrize("seed", [1, 2])
def test_windows_from_one_population_fire_neither_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference, current = pairs(rng, 2000, 0.7), pairs(rng, 2000, 0.7)
    report = detect_drift(
        reference, current, multivariate=True, importance={"x": 0.5, "y": 0.3}, seed=seed
    )
    assert not report.dataset_drift and report.dataset_rule == "none"
    decision = report.decision
    assert decision is not None and decision.auc_lower is not None
    assert decision.auc_lower < 0.55 and decision.auc_threshold == 0.55


def test_auc_threshold_is_the_bar_the_interval_must_clear() -> None:
    rng = np.random.default_rng(8)
    reference, current = pairs(rng, 2000, 0.7), pairs(rng, 2000, -0.7)
    report = detect_drift(reference, current, multivariate=True, auc_threshold=0.99)
    assert report.multivariate is not None and not report.multivariate.drifted
    assert report.multivariate.threshold == 0.99 and report.dataset_rule == "none"


def test_auc_interval_covers_the_true_auc_at_its_level() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300), np.ones(300)]
    true_auc = 0.6381631950841185  # P(N(0.5, 1) > N(0, 1)) = Phi(0.5 / sqrt 2)
    hits = []
    for _ in range(400):
        low, high = auc_interval(y, rng.normal(y * 0.5))
        hits.append(low < true_auc < high)
    assert 0.92 <= np.mean(hits) <= 0.98


def test_reports_round_trip_and_older_reports_still_load() -> None:
    rng = np.random.default_rng(9)
    reference, current = pairs(rng, 1000, 0.7), pairs(rng, 1000, -0.7)
    report = detect_drift(reference, current, multivariate=True, importance={"x": 1.0})
    assert DriftReport.from_dict(report.to_dict()).to_dict() == report.to_dict()
    old = report.to_dict()
    for key in ("dataset_rule", "dataset_decision"):
        old.pop(key)
    for key in ("auc_lower", "auc_upper", "confidence"):
        old["multivariate"].pop(key)
    loaded = DriftReport.from_dict(old)
    assert loaded.decision is None and loaded.dataset_rule is None
    assert "any drifted feature column (older report)" in render_html(loaded)


# --- bad input --------------------------------------------------------------------------------


def test_drift_share_outside_zero_to_one_is_refused() -> None:
    frame = window(np.random.default_rng(1), 50)
    with pytest.raises(InvalidInput, match=r"drift_share must be between 0 and 1 .* got 1\.5"):
        detect_drift(frame, frame, drift_share=1.5)


def test_importance_for_an_unchecked_column_or_not_a_number_is_refused() -> None:
    frame = window(np.random.default_rng(1), 50).assign(score=0.5)
    with pytest.raises(InvalidInput, match=r"importance names \['nope'\], which are not among"):
        detect_drift(frame, frame, importance={"a": 1.0, "nope": 2.0})
    with pytest.raises(InvalidInput, match=r"importance names \['score'\]"):
        detect_drift(frame, frame, prediction="score", importance={"score": 1.0})
    with pytest.raises(InvalidInput, match=r"finite numbers .* got \{'a': nan\}"):
        detect_drift(frame, frame, importance={"a": float("nan")})


def test_auc_threshold_below_one_half_is_refused() -> None:
    frame = window(np.random.default_rng(1), 50)
    with pytest.raises(InvalidInput, match=r"auc_threshold must be in \[0\.5, 1\) .* got 0\.4"):
        detect_drift(frame, frame, auc_threshold=0.4)


# --- the weighted share: laws -----------------------------------------------------------------

flags = st.lists(st.booleans(), min_size=1, max_size=12)
weight = st.floats(min_value=-1.0, max_value=1e3, allow_nan=False)


def _named(values: list[bool]) -> dict[str, bool]:
    return {f"c{i}": v for i, v in enumerate(values)}


@given(flags, st.lists(weight, min_size=12, max_size=12))
@settings(max_examples=200, deadline=None)
def test_weighted_share_is_between_zero_and_one(drifted: list[bool], weights: list[float]) -> None:
    named = _named(drifted)
    share = weighted_share(named, dict(zip(named, weights, strict=False)))
    assert 0.0 <= share <= 1.0
    if not any(drifted):
        assert share == 0.0


@given(flags, st.floats(min_value=1e-6, max_value=1e6))
@settings(max_examples=200, deadline=None)
def test_equal_weights_give_the_plain_share(drifted: list[bool], w: float) -> None:
    named = _named(drifted)
    plain = sum(drifted) / len(drifted)
    assert weighted_share(named, None) == pytest.approx(plain)
    assert weighted_share(named, dict.fromkeys(named, w)) == pytest.approx(plain)


@given(flags, st.lists(weight, min_size=12, max_size=12), st.data())
@settings(max_examples=200, deadline=None)
def test_weighted_share_is_monotone(  # type: ignore[no-untyped-def]
    drifted: list[bool], weights: list[float], data
):
    named = _named(drifted)
    given_weights = dict(zip(named, weights, strict=False))
    before = weighted_share(named, given_weights)
    column = data.draw(st.sampled_from(sorted(named)))
    # One more drifted column never lowers the share ...
    assert weighted_share({**named, column: True}, given_weights) >= before - 1e-12
    # ... and neither does more weight on a drifted column (nor less on a quiet one).
    heavier = {**given_weights, column: max(given_weights[column], 0.0) + 1.0}
    after = weighted_share(named, heavier)
    assert after >= before - 1e-12 if named[column] else after <= before + 1e-12
