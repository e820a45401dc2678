"""Columns of real tables that are not features in the textbook sense: many-valued codes
(zip codes, product ids), identifiers, and dates. Stable data must not raise drift on them,
and a real change in a many-valued column must still show."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpilot.monitoring import detect_drift, fit_profile
from modelpilot.monitoring.drift.minimum import MIN_EFFECT
from modelpilot.monitoring.profile import ReferenceProfile, is_identifier, is_timestamp
from modelpilot.monitoring.report import DriftReport

ZIPS = np.array([f"{code:05d}" for code in range(10_000, 100_000)])


def _zips(rng: np.random.Generator, n: int, p: np.ndarray | None = None) -> pd.DataFrame:
    return pd.DataFrame({"zip": rng.choice(ZIPS, n, p=p), "x": rng.normal(size=n)})


@pytest.mark.parametrize(("n_reference", "n_current"), [(20_000, 5_000), (5_000, 1_000)])
def test_a_zip_code_column_of_one_distribution_does_not_drift(
    n_reference: int, n_current: int
) -> None:
    """90,000 codes, a few rows each: picking the reference's 50 largest and comparing those
    counts made the column drift in every window (the codes large by chance "shrank")."""
    rng = np.random.default_rng(7)
    profile = fit_profile(_zips(rng, n_reference))
    alarms = [
        detect_drift(profile, _zips(rng, n_current), drift_share=0).dataset_drift for _ in range(20)
    ]
    assert sum(alarms) <= 1


def test_a_many_valued_column_that_concentrates_on_a_few_codes_drifts() -> None:
    rng = np.random.default_rng(8)
    codes = 1_000
    stable = np.full(codes, 1 / codes)
    moved = stable * 0.6
    moved[:5] += 0.08  # 40 % of the traffic now comes from five codes
    ref = pd.DataFrame({"code": rng.choice(codes, 50_000).astype(str)})
    cur = pd.DataFrame({"code": rng.choice(codes, 10_000, p=moved).astype(str)})
    report = detect_drift(ref, cur)
    assert report.drifted_columns == ["code"]
    # decided against the many-category minimum, and the stored report says so
    stored = DriftReport.from_dict(report.to_dict()).columns[0]
    assert stored.check == report.columns[0].check == "chi2_many"
    assert stored.min_effect_size == MIN_EFFECT["chi2_many"]
    few = detect_drift(ref.assign(code=ref["code"].str[-1]), cur.assign(code=cur["code"].str[-1]))
    assert few.columns[0].check == "chi2"


@pytest.mark.parametrize(
    ("reference_ids", "current_ids"),
    [
        pytest.param([f"c{i}" for i in range(20_000)], [f"c{i}" for i in range(50_000, 55_000)],
                     id="text"),
        pytest.param(np.arange(20_000), np.arange(50_000, 55_000), id="auto-increment"),
        pytest.param(np.arange(0, 60_000, 3).astype(float), np.arange(90_000, 105_000, 3.0),
                     id="integers-as-float-with-gaps"),
    ],
)  # fmt: skip
def test_identifiers_new_in_every_window_are_reported_not_tested(
    reference_ids: object, current_ids: object
) -> None:
    """Tested as numbers, next month's larger ids drifted in every window."""
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"id": reference_ids, "x": rng.normal(size=20_000)})
    cur = pd.DataFrame({"id": current_ids, "x": rng.normal(size=5_000)})
    report = detect_drift(ref, cur, drift_share=0)
    assert not report.dataset_drift
    row = next(c for c in report.columns if c.column == "id")
    assert row.status.startswith("skipped: every value in the reference is distinct")


def test_numbers_that_are_all_distinct_but_spread_out_are_tested() -> None:
    """Amounts in cents: distinct in a small reference, but a real distribution."""
    rng = np.random.default_rng(12)
    cents = pd.DataFrame({"cents": rng.choice(10**9, 2_000, replace=False)})
    assert not is_identifier(cents["cents"]) and cents["cents"].is_unique
    moved = pd.DataFrame({"cents": rng.choice(10**9, 1_000, replace=False) // 2})
    assert detect_drift(cents, moved).drifted_columns == ["cents"]
    assert not is_identifier(pd.Series(np.arange(99)))  # too few rows to say
    assert is_identifier(pd.Series(np.arange(10**6, 10**6 + 569)))  # a small table's keys
    assert not is_identifier(pd.Series([f"c{i}" for i in range(500)]))  # a many-valued code?


def test_random_integers_in_a_packed_range_are_not_called_identifiers() -> None:
    """The 100-row bound: 100 random integers in a range ten times their count repeat a
    value almost always (all distinct with probability about exp(-5))."""
    rng = np.random.default_rng(13)
    called = sum(is_identifier(pd.Series(rng.integers(0, 1_000, 100))) for _ in range(200))
    assert called <= 4


def _days(start: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    days = pd.date_range(start, periods=30, freq="D")
    return pd.DataFrame({"day": rng.choice(days, n), "amount": rng.gamma(2.0, 10.0, n)})


@pytest.mark.parametrize(
    "as_stored",
    [
        pytest.param(lambda s: s, id="datetime64"),
        pytest.param(lambda s: s.dt.tz_localize("UTC"), id="tz-aware"),
        pytest.param(lambda s: s.astype("timestamp[us][pyarrow]"), id="arrow-timestamp"),
        pytest.param(lambda s: s.dt.strftime("%Y-%m-%d"), id="iso-text-from-csv"),
        pytest.param(lambda s: s.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), id="iso-text-with-time"),
        pytest.param(lambda s: s.dt.date, id="python-dates-from-parquet"),
    ],
)
def test_a_date_column_is_reported_not_tested(as_stored: object) -> None:
    """Next month's dates are all new: tested as categories, the column drifted every window
    of data in which nothing changed. It is listed as skipped, with the reason."""
    rng = np.random.default_rng(9)
    ref, cur = _days("2026-10-01", 6_000, rng), _days("2026-11-01", 2_000, rng)
    for frame in (ref, cur):
        frame["day"] = as_stored(frame["day"])  # type: ignore[operator]
    profile = fit_profile(ref)
    assert ReferenceProfile.from_json(profile.to_json()).columns["day"] == profile.columns["day"]
    report = detect_drift(ReferenceProfile.from_json(profile.to_json()), cur, drift_share=0)
    assert not report.dataset_drift
    day = next(c for c in report.columns if c.column == "day")
    assert day.status.startswith("skipped: dates or times") and not day.drifted
    assert "derived" in day.status


def test_a_date_column_named_as_categorical_is_tested() -> None:
    """The user's explicit ``categorical=[...]`` wins over the inference."""
    rng = np.random.default_rng(10)
    ref, cur = _days("2026-10-01", 3_000, rng), _days("2026-11-01", 1_000, rng)
    report = detect_drift(ref.astype({"day": str}), cur.astype({"day": str}), categorical=["day"])
    assert report.drifted_columns == ["day"]


def test_text_with_a_value_that_is_not_a_date_is_not_a_date_column() -> None:
    assert not is_timestamp(pd.Series(["2026-11-30", "2026-12-01", "unknown"]))
    assert not is_timestamp(pd.Series(["20261130", "20261201"]))  # numbers-as-text codes
    assert is_timestamp(pd.Series([datetime.date(2026, 11, 30), None]))
    assert not is_timestamp(pd.Series([None, None], dtype=object))


@given(
    st.lists(
        st.one_of(
            st.dates().map(lambda d: d.isoformat()),
            st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="seconds")),
        ),
        min_size=1,
        max_size=30,
    )
)
@settings(max_examples=100, deadline=None)
def test_iso_dates_and_times_as_text_are_dates(values: list[str]) -> None:
    assert is_timestamp(pd.Series(values, dtype=object))
