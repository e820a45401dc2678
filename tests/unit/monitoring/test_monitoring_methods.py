"""Drift methods against SciPy and their invariants (identical samples, symmetry, order)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from modelpilot.errors import InvalidInput
from modelpilot.monitoring.drift import (
    CategoricalCounts,
    ChiSquare,
    JensenShannon,
    KolmogorovSmirnov,
    NormalisedWasserstein,
    NumericSummary,
    PopulationStabilityIndex,
    SortedSample,
    available_methods,
    get_method,
)
from modelpilot.monitoring.drift.chi2 import pool_sparse
from modelpilot.monitoring.drift.correction import adjust_p_values
from modelpilot.monitoring.drift.jensenshannon import jensen_shannon
from modelpilot.monitoring.drift.ks import ks_statistic, ks_test
from modelpilot.monitoring.drift.psi import psi
from modelpilot.monitoring.drift.registry import method_for

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=1, max_size=60) | st.lists(
    st.integers(-3, 3).map(float), min_size=1, max_size=60
)
categories = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=80)


def ks(reference: list[float], current: list[float]) -> tuple[float, float]:
    return ks_test(NumericSummary.from_values(reference), np.sort(np.asarray(current)))


# --- Kolmogorov-Smirnov --------------------------------------------------------------------


@given(samples, samples)
@settings(max_examples=200, deadline=None)
def test_ks_statistic_and_p_value_match_scipy_ks_2samp(a: list[float], b: list[float]) -> None:
    with warnings.catch_warnings():  # scipy warns when its exact count gives up; so do we
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.ks_2samp(a, b)
    d, p = ks(a, b)
    raw = ks_statistic(NumericSummary.from_values(a), np.sort(np.asarray(b)))
    assert raw == pytest.approx(expected.statistic, abs=1e-12)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_ks_matches_scipy_in_the_asymptotic_regime() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=12_000), rng.normal(0.02, 1, size=11_000)
    expected = stats.ks_2samp(a, b)
    d, p = ks(a.tolist(), b.tolist())
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_on_a_sketched_reference_stays_within_one_over_max_points() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=200_000), rng.normal(0.01, 1, size=150_000)
    summary = NumericSummary.from_values(a, max_points=4096)
    assert not summary.exact
    d, p = ks_test(summary, np.sort(b))
    expected = stats.ks_2samp(a, b)
    assert expected.statistic - 1 / 4096 <= d <= expected.statistic + 1e-12
    assert p == pytest.approx(expected.pvalue, rel=0.5)


@given(samples)
@settings(max_examples=50, deadline=None)
def test_ks_does_not_drift_on_identical_samples(a: list[float]) -> None:
    result = KolmogorovSmirnov().fit(a).score(a)
    assert (result.statistic, result.p_value, result.drifted) == (0.0, 1.0, False)


def test_ks_needs_a_minimum_effect_size_as_well_as_significance() -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.normal(size=200_000), rng.normal(0.03, 1, size=200_000)
    result = KolmogorovSmirnov().fit(reference).score(current)
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.effect == "wasserstein" and result.min_effect_size is not None
    assert result.effect_size is not None and result.effect_size < result.min_effect_size
    assert not result.drifted
    assert KolmogorovSmirnov(min_effect_size=0.0).fit(reference).score(current).drifted


# --- PSI and Jensen-Shannon ----------------------------------------------------------------


@given(samples)
@settings(max_examples=100, deadline=None)
def test_psi_and_js_are_zero_on_identical_numeric_samples(a: list[float]) -> None:
    assert PopulationStabilityIndex().fit(a).score(a).statistic == 0.0
    assert JensenShannon().fit(a).score(a).statistic == 0.0


@given(categories, categories)
@settings(max_examples=100, deadline=None)
def test_categorical_psi_and_js_are_non_negative_and_symmetric(a: list[str], b: list[str]) -> None:
    for method in (PopulationStabilityIndex, JensenShannon):
        forward = method().fit(a).score(b).statistic
        backward = method().fit(b).score(a).statistic
        assert forward >= 0.0
        assert forward == pytest.approx(backward, abs=1e-12)
        assert method().fit(a).score(a).statistic == 0.0


@given(samples, samples, st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_order_of_rows_does_not_change_any_score(a: list[float], b: list[float], r) -> None:  # type: ignore[no-untyped-def]
    shuffled_a, shuffled_b = a[:], b[:]
    r.shuffle(shuffled_a)
    r.shuffle(shuffled_b)
    for name in ("ks", "psi", "jensenshannon"):
        spec = get_method(name)
        first = spec.create().fit(a).score(b)
        second = spec.create().fit(shuffled_a).score(shuffled_b)
        assert first == second


# Shares are counts over totals: never subnormal. (SciPy's reference, which the JS test compares
# with, underflows on a 5e-324 share and answers inf where the distance is ~0.)
share_vectors = st.lists(st.floats(0, 1, allow_subnormal=False), min_size=2, max_size=12).filter(
    lambda v: sum(v) > 0
)


@given(share_vectors, share_vectors)
def test_psi_over_fixed_bins_is_non_negative_and_symmetric(p: list[float], q: list[float]) -> None:
    size = min(len(p), len(q))
    pp = np.asarray(p[:size]) / sum(p[:size]) if sum(p[:size]) else np.full(size, 1 / size)
    qq = np.asarray(q[:size]) / sum(q[:size]) if sum(q[:size]) else np.full(size, 1 / size)
    assert psi(pp, qq) >= 0.0
    assert psi(pp, qq) == pytest.approx(psi(qq, pp), abs=1e-12)


@given(share_vectors, share_vectors)
def test_js_matches_scipy_and_is_symmetric(p: list[float], q: list[float]) -> None:
    size = min(len(p), len(q))
    pp, qq = np.asarray(p[:size]), np.asarray(q[:size])
    if pp.sum() == 0 or qq.sum() == 0:
        return
    assert jensen_shannon(pp, qq) == jensen_shannon(qq, pp)
    with np.errstate(invalid="ignore"):  # SciPy takes sqrt of a rounding-negative divergence
        expected = float(np.nan_to_num(scipy_js(pp, qq, base=2)))
    assert jensen_shannon(pp, qq) == pytest.approx(expected, abs=1e-7)


def test_psi_flags_a_large_shift_but_not_a_0_2_sd_shift() -> None:
    rng = np.random.default_rng(6)
    fitted = PopulationStabilityIndex().fit(rng.normal(size=50_000))
    assert not fitted.score(rng.normal(0.2, 1, size=50_000)).drifted  # PSI ~0.04: documented
    assert fitted.score(rng.normal(0.6, 1, size=50_000)).drifted


# --- chi-square and Wasserstein ------------------------------------------------------------


@given(categories, categories)
@settings(max_examples=100, deadline=None)
def test_chi_square_matches_scipy_chi2_contingency(a: list[str], b: list[str]) -> None:
    result = ChiSquare().fit(a).score(b)
    names = sorted(set(a) | set(b))
    # bins expected below 5 are pooled first (the p-value is not valid on them)
    table = pool_sparse(np.array([[a.count(n) for n in names], [b.count(n) for n in names]]))
    if table.shape[1] < 2:
        assert (result.statistic, result.p_value) == (0.0, 1.0)
        return
    statistic, p_value, _, _ = stats.chi2_contingency(table)
    assert result.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9, abs=1e-12)


def test_chi_square_flags_a_ten_point_change_in_one_share() -> None:
    rng = np.random.default_rng(7)
    levels = ["a", "b", "c", "d"]
    reference = rng.choice(levels, 10_000, p=[0.4, 0.3, 0.2, 0.1])
    current = rng.choice(levels, 10_000, p=[0.3, 0.3, 0.2, 0.2])
    result = ChiSquare().fit(reference).score(current)
    assert result.drifted and result.effect == "jensenshannon"
    assert result.effects["share_difference"] == pytest.approx(0.1, abs=0.02)


@given(samples, samples)
@settings(max_examples=100, deadline=None)
def test_wasserstein_matches_scipy_on_an_exact_reference(a: list[float], b: list[float]) -> None:
    if np.std(a) == 0:
        return
    result = NormalisedWasserstein().fit(a).score(b)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert result.statistic == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_wasserstein_of_a_pure_shift_is_the_shift_in_standard_deviations() -> None:
    rng = np.random.default_rng(8)
    reference = rng.gamma(2.0, 3.0, size=100_000)
    shifted = rng.gamma(2.0, 3.0, size=100_000) + 0.2 * reference.std()
    result = NormalisedWasserstein().fit(reference).score(shifted)
    assert result.statistic == pytest.approx(0.2, abs=0.02)
    assert result.drifted


def test_wasserstein_refuses_a_constant_reference() -> None:
    with pytest.raises(InvalidInput, match="constant"):
        NormalisedWasserstein().fit([2.0, 2.0, 2.0])


# --- registry, summaries and corrections ---------------------------------------------------


def test_registry_lists_methods_by_kind_with_default_thresholds() -> None:
    assert available_methods("numeric") == ["jensenshannon", "ks", "psi", "wasserstein"]
    assert available_methods("categorical") == ["chi2", "jensenshannon", "psi"]
    assert {n: get_method(n).default_threshold for n in available_methods()} == {
        "chi2": 0.05,
        "jensenshannon": 0.1,
        "ks": 0.05,
        "psi": 0.1,
        "wasserstein": 0.1,
    }


def test_unknown_method_error_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="Unknown drift method 'kss'. Known methods: chi2"):
        get_method("kss")


def test_method_for_the_wrong_kind_names_the_methods_that_fit() -> None:
    with pytest.raises(InvalidInput, match="'chi2' does not accept numeric column 'age'"):
        method_for("chi2", "numeric", "age")


def test_scoring_before_fitting_says_to_fit_first() -> None:
    with pytest.raises(InvalidInput, match=r"not fitted: call fit\(reference\)"):
        KolmogorovSmirnov().score([1.0, 2.0])


def test_sketched_summary_counts_are_exact_at_kept_points_and_close_between() -> None:
    rng = np.random.default_rng(9)
    values = np.sort(rng.normal(size=100_000))
    summary = NumericSummary.from_values(values, max_points=1000)
    exact = np.searchsorted(values, summary.values, side="right")
    assert np.array_equal(summary.count_at_most(summary.values), exact)
    probes = rng.normal(size=1000)
    error = np.abs(summary.count_at_most(probes) - np.searchsorted(values, probes, side="right"))
    assert error.max() <= 100_000 / 1000 + 1


def test_summary_round_trips_through_its_dict_bit_for_bit() -> None:
    summary = NumericSummary.from_values(np.random.default_rng(1).normal(size=5000))
    again = NumericSummary.from_dict(summary.to_dict())
    assert np.array_equal(again.values, summary.values) and again.exact == summary.exact
    sample = SortedSample.from_values([0.0, 1.0])
    assert KolmogorovSmirnov().fit(again).score(sample) == KolmogorovSmirnov().fit(summary).score(
        sample
    )


def test_categorical_counts_ignore_nulls_and_compare_as_text() -> None:
    counts = CategoricalCounts.from_values(["1", 1, None, "x"])
    assert counts.counts == {"1": 2, "x": 1} and counts.n_null == 1


def test_benjamini_hochberg_matches_the_step_up_definition() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    adjusted = adjust_p_values(p, "bh")
    assert adjusted == pytest.approx(
        [0.008, 0.032, 0.0672, 0.0672, 0.0672, 0.08, 0.074 * 8 / 7, 0.205]
    )
    with pytest.raises(InvalidInput, match="Unknown multiple-testing correction 'holm'"):
        adjust_p_values(p, "holm")
