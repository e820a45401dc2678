"""``read_predictions(since=...)``: ISO times and durations, and a clear error for the rest."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.clock import parse_duration_s, since_ms
from modelpilot.errors import InvalidInput
from modelpilot.predictions import LogBatch, read_predictions, write_segments

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
HOUR_MS = 3_600_000


def _log(folder: Path, stamps_ms: list[int]) -> None:
    rows = [
        {"request_id": f"r{i}", "row": 0, "timestamp_ms": t, "model": "m", "version": 1,
         "deployment": "d", "variant": "stable", "latency_ms": 1.0, "error": None}
        for i, t in enumerate(stamps_ms)
    ]  # fmt: skip
    write_segments(folder, LogBatch.from_rows(rows))


@given(st.integers(0, 10**6), st.sampled_from(sorted(UNITS)), st.booleans())
def test_a_duration_is_its_number_times_its_unit(amount: int, unit: str, upper: bool) -> None:
    text = f"{amount}{unit.upper() if upper else unit}"
    assert parse_duration_s(text) == amount * UNITS[unit]
    assert parse_duration_s(f" {amount} {unit} ") == amount * UNITS[unit]


@given(st.text(max_size=12))
def test_any_other_text_is_a_time_or_a_clear_error(text: str) -> None:
    try:
        since_ms(text, now=10**13)
    except InvalidInput as exc:
        assert exc.field == "since" and "30m, 2h, 1d or 1w" in exc.message


@given(st.integers(1, 10_000), st.sampled_from(sorted(UNITS)))
def test_a_duration_counts_back_from_now(amount: int, unit: str) -> None:
    now = 2_000_000_000_000
    assert since_ms(f"{amount}{unit}", now=now) == now - amount * UNITS[unit] * 1000


def test_iso_times_datetimes_and_timedeltas_are_accepted() -> None:
    assert since_ms("2026-05-01T12:00:00Z") == since_ms("2026-05-01T14:00:00+02:00")
    assert since_ms("2026-05-01") == since_ms(dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    assert since_ms(dt.timedelta(hours=2), now=5 * HOUR_MS) == 3 * HOUR_MS


def test_read_predictions_since_a_duration_keeps_the_recent_rows(tmp_path: Path) -> None:
    now = since_ms("0s")
    _log(tmp_path, [now - 3 * HOUR_MS, now - HOUR_MS // 2])
    assert list(read_predictions(tmp_path, since="1h")["request_id"]) == ["r1"]
    assert len(read_predictions(tmp_path, since="1d")) == 2


@pytest.mark.parametrize("since", ["yesterday", "1 fortnight", 12, "-3h"])
def test_read_predictions_names_the_since_field_and_the_accepted_forms(
    tmp_path: Path, since: object
) -> None:
    _log(tmp_path, [1_000])
    with pytest.raises(InvalidInput, match=r"since=.* is not a time: expected an ISO 8601") as info:
        read_predictions(tmp_path, since=since)
    assert info.value.field == "since" and "30m, 2h, 1d or 1w" in info.value.message


def test_the_sdk_reports_a_bad_since_as_invalid_input(tmp_path: Path) -> None:
    code = (
        "import modelpilot as mp\n"
        "from modelpilot.errors import InvalidInput\n"
        "try:\n    mp.read_predictions(since='yesterday')\n"
        "except InvalidInput as exc:\n    print(exc.field, '|', exc.message)\n"
    )
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("since | since='yesterday' is not a time")
