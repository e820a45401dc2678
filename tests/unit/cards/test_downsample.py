"""Min/max downsampling of chart series: properties over arbitrary series (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.cards.downsample import MAX_CHART_POINTS, downsample_min_max
from modelpilot.errors import InvalidInput

values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
series = st.lists(values, min_size=0, max_size=3000)
budgets = st.integers(min_value=4, max_value=600)


@given(series, budgets)
def test_result_is_an_ordered_subsequence_within_the_budget(ys: list[float], budget: int) -> None:
    xs = list(range(len(ys)))
    out_x, out_y = downsample_min_max(xs, ys, budget)
    assert len(out_x) == len(out_y) <= budget
    assert out_x == sorted(set(out_x))  # strictly increasing indices: order kept, no repeats
    assert all(ys[int(x)] == y for x, y in zip(out_x, out_y, strict=True))  # nothing invented


@given(series.filter(bool), budgets)
def test_extremes_and_endpoints_survive(ys: list[float], budget: int) -> None:
    out_x, out_y = downsample_min_max(list(range(len(ys))), ys, budget)
    assert min(out_y) == min(ys) and max(out_y) == max(ys)
    assert out_x[0] == 0 and out_x[-1] == len(ys) - 1


@given(series, budgets)
def test_a_short_series_comes_back_unchanged(ys: list[float], budget: int) -> None:
    xs = [float(i) * 0.5 for i in range(len(ys))]
    if len(ys) <= budget:
        assert downsample_min_max(xs, ys, budget) == (xs, [float(y) for y in ys])


@given(st.integers(min_value=0, max_value=2**31), budgets)
def test_every_bucket_spike_is_kept(seed: int, budget: int) -> None:
    """A single spike anywhere in a long flat series is drawn (averaging would lose it)."""
    n = 5000
    ys = np.zeros(n)
    spike = np.random.default_rng(seed).integers(n)
    ys[spike] = 1e6
    out_x, out_y = downsample_min_max(np.arange(n).tolist(), ys.tolist(), budget)
    assert spike in out_x and 1e6 in out_y


def test_a_million_points_become_at_most_the_chart_budget() -> None:
    ys = np.random.default_rng(0).normal(size=1_000_000)
    out_x, out_y = downsample_min_max(np.arange(ys.size).tolist(), ys.tolist())
    assert len(out_x) <= MAX_CHART_POINTS
    assert min(out_y) == ys.min() and max(out_y) == ys.max()


def test_mismatched_lengths_and_tiny_budgets_are_refused() -> None:
    with pytest.raises(InvalidInput, match="one y per x; got 2 x values and 1 y values"):
        downsample_min_max([0, 1], [0.5])
    with pytest.raises(InvalidInput, match="max_points must be at least 4"):
        downsample_min_max([0, 1], [0.5, 0.6], max_points=3)
