"""Drift that neither cries wolf nor sleeps: rates over many windows, and effect-size laws.

The windows come from a generator written apart from the calibration's
(benchmarks/calibrate_drift.py), so these rates test the calibrated minimum effects, not
the data they were fitted on: 30 columns of mixed types, 10,000 rows per window, each window
one "year" whose parameters differ a little from the others' in some columns (means by
N(0, 0.015) sd, shares by a factor exp(N(0, 0.03))): differences a p-value alone flags at
this size and nobody should be woken for.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from modelpilot.monitoring import detect_drift
from modelpilot.monitoring.drift.effect import (
    TAIL_BUCKETS,
    frequency_effects,
    normalised_wasserstein,
    share_difference,
    top_categories,
    wasserstein_between,
)
from modelpilot.monitoring.drift.frequency import has_few_integer_values, value_counts
from modelpilot.monitoring.drift.sample import NumericSummary
from modelpilot.monitoring.report import render_html

# Minutes of work: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow

N_ROWS, N_WINDOWS = 10_000, 50
Column = Callable[[np.random.Generator, np.random.Generator, int], np.ndarray]
ITEMS_P = np.array([0.06, 0.1, 0.13, 0.14, 0.13, 0.11, 0.09, 0.07, 0.05, 0.04, 0.03, 0.02])
ITEMS_P = np.r_[ITEMS_P, 1 - ITEMS_P.sum()]  # values 0..12


def _numeric(draw: Callable[[np.random.Generator, int], np.ndarray], moves: bool) -> Column:
    def column(year: np.random.Generator, rng: np.random.Generator, n: int) -> np.ndarray:
        shift = year.normal(0, 0.015) if moves else 0.0
        factor = np.exp(year.normal(0, 0.015)) if moves else 1.0
        return (draw(rng, n) * factor + shift) * 7.0 + 100.0

    return column


def _shares(levels: list[object], p: np.ndarray, moves: bool) -> Column:
    values = np.array(levels, dtype=object)

    def column(year: np.random.Generator, rng: np.random.Generator, n: int) -> np.ndarray:
        q = p * np.exp(year.normal(0, 0.03, p.size)) if moves else p
        return values[rng.choice(values.size, n, p=q / q.sum())]

    return column


def _integers(p: np.ndarray, moves: bool) -> Column:
    column = _shares(list(range(p.size)), p, moves)
    return lambda year, rng, n: column(year, rng, n).astype(np.float64)


def _population() -> dict[str, Column]:
    shapes: list[Callable[[np.random.Generator, int], np.ndarray]] = [
        lambda r, n: r.normal(size=n),
        lambda r, n: r.standard_t(5, n) / 1.29,
        lambda r, n: r.exponential(1.0, n) - 1.0,
        lambda r, n: (r.beta(2, 5, n) - 0.286) / 0.16,
        lambda r, n: (r.lognormal(0, 0.4, n) - 1.08) / 0.45,
    ]
    cols: dict[str, Column] = {"score": _numeric(shapes[0], moves=False)}
    cols |= {f"x{i}": _numeric(shapes[i % 5], moves=i % 2 == 0) for i in range(12)}
    cols["items"] = _integers(ITEMS_P, moves=False)
    for i, k in enumerate((3, 5, 8, 15, 30)):
        p = np.linspace(2.0, 1.0, k) / np.linspace(2.0, 1.0, k).sum()
        cols[f"n{i}"] = _integers(p, moves=i % 2 == 1)
    cols["day"] = lambda year, rng, n: rng.integers(0, 365, n).astype(np.float64)
    for i, k in enumerate((2, 2, 2, 3, 4, 6, 9, 12, 600, 2500)):
        weights = 1 / np.arange(1, k + 1) ** (1.2 if k > 100 else 0.5)
        cols[f"c{i}"] = _shares([f"v{j}" for j in range(k)], weights / weights.sum(), i % 2 == 0)
    return cols


POPULATION = _population()
# A model that leans on 'score' for half of what it knows (as permutation importance would
# say), the rest spread evenly: the weights of the dataset verdict's share rule.
IMPORTANCE = {name: (0.5 if name == "score" else 0.5 / 29) for name in POPULATION}


def _window(rng: np.random.Generator, n: int = N_ROWS) -> pd.DataFrame:
    year = np.random.default_rng(rng.integers(2**63))
    return pd.DataFrame({name: make(year, rng, n) for name, make in POPULATION.items()})


def _move_three_values(items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A third of the rows at 3, 6 and 9 move to a neighbour (half down, half up)."""
    moved = items.copy()
    hit = np.isin(items, (3.0, 6.0, 9.0)) & (rng.random(items.size) < 1 / 3)
    moved[hit] += np.where(rng.random(items.size) < 0.5, -1.0, 1.0)[hit]
    return moved


def test_population_has_30_columns_of_mixed_kinds() -> None:
    frame = _window(np.random.default_rng(0), 1000)
    kinds = frame.dtypes.map(lambda d: "numeric" if d.kind == "f" else "categorical")
    assert frame.shape[1] == 30 and set(kinds) == {"numeric", "categorical"}


def test_windows_from_one_population_raise_dataset_drift_in_at_most_5_percent() -> None:
    rng = np.random.default_rng(20261123)
    reports = [
        detect_drift(_window(rng), _window(rng), importance=IMPORTANCE) for _ in range(N_WINDOWS)
    ]
    assert np.mean([r.dataset_drift for r in reports]) <= 0.05
    # ... and so would the strictest rule, any drifted column (drift_share=0).
    assert np.mean([bool(r.drifted_columns) for r in reports]) <= 0.05


def test_p_values_alone_would_cry_wolf_on_the_same_windows() -> None:
    # The reason for the minimum effects: the years' small real differences are significant.
    # (drift_share=0: the dataset verdict of the old rule, any drifted column.)
    rng = np.random.default_rng(20261123)
    alarms = [
        detect_drift(_window(rng), _window(rng), min_effect_size=0, drift_share=0).dataset_drift
        for _ in range(10)
    ]
    assert np.mean(alarms) >= 0.5


def test_a_0_2_sd_shift_and_three_moved_integer_values_are_each_flagged_in_95_percent() -> None:
    rng = np.random.default_rng(77)
    shifted, moved, mean_moves, decided = [], [], [], []
    for _ in range(N_WINDOWS):
        reference, current = _window(rng), _window(rng)
        current["score"] += 0.2 * 7.0  # the population sd of 'score' is 7
        before = current["items"].to_numpy()
        current["items"] = _move_three_values(before, rng)
        mean_moves.append(abs(current["items"].mean() - before.mean()) / before.std())
        report = detect_drift(reference, current, importance=IMPORTANCE)
        shifted.append("score" in report.drifted_columns)
        moved.append("items" in report.drifted_columns)
        decided.append(report.dataset_rule == "importance_share")
    assert max(mean_moves) < 0.05
    assert np.mean(shifted) >= 0.95 and np.mean(moved) >= 0.95
    assert np.mean(decided) >= 0.95  # 'score' carries half the importance: it decides


def test_three_moved_values_are_found_by_the_exact_value_check_not_by_ks() -> None:
    rng = np.random.default_rng(5)
    reference, current = _window(rng), _window(rng)
    current["items"] = _move_three_values(current["items"].to_numpy(), rng)
    row = detect_drift(reference, current).column("items")
    assert row.exact_values is not None and row.exact_values.drifted
    assert row.effect_size is not None and row.effect_size < (row.min_effect_size or 0)
    assert row.exact_values.effect == "jensenshannon" and "psi" in row.exact_values.effects


def test_report_shows_each_columns_effect_and_minimum() -> None:
    rng = np.random.default_rng(6)
    report = detect_drift(_window(rng, 2000), _window(rng, 2000))
    rows = {row["column"]: row for row in report.to_dict()["columns"]}
    assert rows["score"]["effect"] == "wasserstein" and rows["c0"]["effect"] == "share_difference"
    assert rows["c5"]["effect"] == "jensenshannon" and set(rows["c5"]["effects"]) >= {"psi"}
    assert all(row["min_effect_size"] is not None for row in rows.values())
    assert rows["items"]["exact_values"]["n_values"] == 13 and rows["day"]["exact_values"] is None
    assert len(rows["c9"]["effects"]) == 3  # 2,500 categories compared as top 50 + (other)
    page = render_html(report)
    assert "minimum effect" in page and "exact values" in page and "W1/sd" in page


# --- effect sizes: laws they must obey ------------------------------------------------------

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=2, max_size=50) | st.lists(
    st.integers(-3, 3).map(float), min_size=2, max_size=50
)
counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12).filter(lambda c: sum(c) > 0)


def _summary(values: list[float] | np.ndarray) -> NumericSummary:
    return NumericSummary.from_values(np.asarray(values, dtype=np.float64))


@given(samples, samples)
@settings(max_examples=150, deadline=None)
def test_wasserstein_matches_scipy_is_symmetric_and_non_negative(a: list[float], b: list[float]):  # type: ignore[no-untyped-def]
    forward = wasserstein_between(_summary(a), _summary(b))
    assert forward >= 0
    assert forward == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)
    assert forward == pytest.approx(wasserstein_between(_summary(b), _summary(a)), abs=1e-9)


@given(samples)
@settings(max_examples=50, deadline=None)
def test_effect_sizes_are_zero_for_identical_samples(a: list[float]) -> None:
    assert wasserstein_between(_summary(a), _summary(a)) == 0.0
    ref, cur = value_counts(_summary(a), np.sort(np.asarray(a)))
    assert set(frequency_effects(ref, cur).values()) == {0.0}


@given(
    samples,
    samples,
    st.floats(0.01, 100),
    st.floats(-100, 100, allow_nan=False),
)
@settings(max_examples=100, deadline=None)
def test_normalised_wasserstein_ignores_units_and_origin(a, b, scale, shift):  # type: ignore[no-untyped-def]
    assume(np.std(a) > 1e-3)  # well above float rounding after scaling and shifting
    plain = normalised_wasserstein(_summary(a), _summary(b))
    moved = normalised_wasserstein(
        _summary(np.asarray(a) * scale + shift), _summary(np.asarray(b) * scale + shift)
    )
    assert plain is not None and moved == pytest.approx(plain, rel=1e-6, abs=1e-9)


def test_normalised_wasserstein_of_a_pure_shift_is_the_shift_in_sd() -> None:
    values = np.random.default_rng(0).gamma(2.0, 3.0, 50_000)
    sd = values.std()
    assert normalised_wasserstein(_summary(values), _summary(values + 0.2 * sd)) == pytest.approx(
        0.2, rel=1e-9
    )


@given(counts, counts, st.integers(1, 7), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_frequency_effects_are_symmetric_bounded_and_ignore_order_and_totals(  # type: ignore[no-untyped-def]
    p, q, factor, rnd
):
    size = min(len(p), len(q))
    ref, cur = np.array(p[:size]), np.array(q[:size])
    if ref.sum() == 0 or cur.sum() == 0:
        return
    effects = frequency_effects(ref, cur)
    assert all(v >= 0 for v in effects.values())
    assert 0 <= effects["jensenshannon"] <= 1 and 0 <= effects["share_difference"] <= 1
    swapped = frequency_effects(cur, ref)
    for name in ("jensenshannon", "psi", "share_difference"):
        assert swapped[name] == pytest.approx(effects[name], rel=1e-9, abs=1e-12)
    order = list(range(size))
    rnd.shuffle(order)
    shuffled = frequency_effects(ref[order], cur[order] * factor)
    for name in ("jensenshannon", "psi", "share_difference"):
        assert shuffled[name] == pytest.approx(effects[name], rel=1e-9, abs=1e-12)


@given(counts, counts, st.integers(1, 5))
@settings(max_examples=100, deadline=None)
def test_top_categories_keep_every_row(p: list[int], q: list[int], top: int) -> None:
    size = min(len(p), len(q))
    names = [f"k{i}" for i in range(size)]
    kept, ref, cur = top_categories(names, np.array(p[:size]), np.array(q[:size]), top=top)
    assert cur.sum() == sum(q[:size])
    if size <= top + 1:
        assert kept == names and ref.tolist() == p[:size]
    else:  # compared on the part of the reference that did not choose the categories
        assert len(kept) == top + TAIL_BUCKETS and 0 <= ref.sum() <= sum(p[:size])
        assert kept[:top] == [n for n in kept[:top] if n in names]


def test_share_difference_is_the_points_a_share_moved() -> None:
    assert share_difference(np.array([70, 30]), np.array([60, 40])) == pytest.approx(0.1)


def test_only_integer_columns_with_at_most_50_values_get_the_exact_value_check() -> None:
    assert has_few_integer_values(_summary(np.arange(50.0)))
    assert not has_few_integer_values(_summary(np.arange(51.0)))
    assert not has_few_integer_values(_summary([0.5, 1.0]))
