"""DriftReport views: frame, strict JSON, self-contained HTML; profiles saved and reloaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelpilot.errors import InvalidInput
from modelpilot.monitoring import DriftReport, ReferenceProfile, detect_drift, fit_profile


@pytest.fixture(scope="module")
def report() -> DriftReport:
    rng = np.random.default_rng(21)
    n = 3000
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "plan": rng.choice(["basic", "pro", "<b>team</b>"], n),
            "empty": np.full(n, np.nan),
        }
    )
    current = reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    current["age"] = rng.normal(45, 10, n)
    importance = {"age": 0.05, "income": 0.03, "plan": 0.01}  # permutation importance, say
    return detect_drift(reference, current, importance=importance)


def test_frame_has_one_row_per_column_with_the_documented_columns(report: DriftReport) -> None:
    frame = report.to_frame()
    assert list(frame.columns[:6]) == [
        "column",
        "method",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
    ]
    assert list(frame["column"]) == ["age", "income", "plan", "empty"]
    assert frame["statistic"].dtype == "Float64"
    assert frame.set_index("column").loc["empty", "p_value"] is pd.NA
    assert report.drifted_columns == ["age"] and report.dataset_drift


def test_json_is_strict_and_carries_the_verdict_rows_and_histograms(report: DriftReport) -> None:
    def refuse(constant: str) -> float:
        raise AssertionError(f"non-standard JSON constant {constant}")

    data = json.loads(report.to_json(), parse_constant=refuse)
    assert data["dataset_drift"] is True and data["drifted_columns"] == ["age"]
    assert data["dataset_rule"] == "importance_share"
    decision = data["dataset_decision"]
    assert decision["weights"] == "importance" and decision["drift_share"] == 0.5
    assert decision["weighted_share"] == pytest.approx(5 / 9)
    empty = next(c for c in data["columns"] if c["column"] == "empty")
    assert empty["statistic"] is None and empty["status"] == "skipped: all null in reference"
    assert set(data["histograms"]) == {"age", "income", "plan"}
    assert data == report.to_dict()


def test_html_is_self_contained_with_inline_svg_histograms(
    report: DriftReport, tmp_path: Path
) -> None:
    path = report.save_html(tmp_path / "drift.html")
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 3
    assert not re.search(r"https?:|<script|<link|<img|src=|url\(|@import", html)
    assert "&lt;b&gt;team&lt;/b&gt;" in html and "<b>team</b>" not in html  # escaped
    assert "Dataset drift detected" in html and "skipped: all null in reference" in html
    assert "Dataset rule <b>importance_share</b>" in html
    assert "importance-weighted share 0.556 &gt;= 0.5 (importance weights)" in html


def test_report_json_file_is_written_atomically(report: DriftReport, tmp_path: Path) -> None:
    path = report.save_json(tmp_path / "drift.json")
    assert json.loads(path.read_text())["n_current"] == 3000
    assert [p.name for p in tmp_path.iterdir()] == ["drift.json"]


def test_profile_saved_and_loaded_scores_windows_identically(tmp_path: Path) -> None:
    rng = np.random.default_rng(22)
    reference = pd.DataFrame({"x": rng.normal(size=30_000), "c": rng.choice(list("abc"), 30_000)})
    profile = fit_profile(reference, max_points=2048)
    loaded = ReferenceProfile.load(profile.save(tmp_path / "profile.json"))
    assert loaded == profile
    for shift in (0.0, 0.1):
        window = pd.DataFrame({"x": rng.normal(shift, 1, 2000), "c": rng.choice(list("abc"), 2000)})
        assert detect_drift(loaded, window).to_dict() == detect_drift(profile, window).to_dict()
    assert len((tmp_path / "profile.json").read_text()) < 200_000  # sketch, not the raw rows


def test_profile_from_other_json_is_refused_with_the_expected_format() -> None:
    with pytest.raises(InvalidInput, match="expected format 'modelpilot.reference_profile'"):
        ReferenceProfile.from_json('{"format": "evidently"}')
    with pytest.raises(InvalidInput, match="not valid JSON"):
        ReferenceProfile.from_json("{")
    newer = json.dumps({"format": "modelpilot.reference_profile", "schema_version": 9})
    with pytest.raises(InvalidInput, match="schema_version 9 is not supported"):
        ReferenceProfile.from_json(newer)


def test_empty_reference_is_refused() -> None:
    with pytest.raises(InvalidInput, match="The reference data has no rows"):
        fit_profile(pd.DataFrame({"x": []}))
