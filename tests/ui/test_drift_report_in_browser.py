"""The drift report opens in a real browser with no network and shows its histograms."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from modelpilot.monitoring import detect_drift


def test_drift_report_renders_offline_with_plots(
    render: Callable[[Path], str], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=3000), "plan": rng.choice(["a", "b"], 3000)})
    current = pd.DataFrame(
        {"x": rng.normal(0.5, 1, 3000), "plan": rng.choice(["a", "b"], 3000, p=[0.3, 0.7])}
    )
    report = detect_drift(reference, current)
    page = report.save_html(tmp_path / "drift.html")
    dom = render(page)
    assert dom.count("<svg") >= 2  # one histogram per column at least
    assert "<script" not in dom and "<link" not in dom
    text = " ".join(
        re.sub(r"<svg.*?</svg>|<style.*?</style>|<[^>]+>", " ", dom, flags=re.S).split()
    )
    assert "Dataset drift detected: 2 of 2 feature columns drifted" in text
    assert "3,000 reference rows, 3,000 current rows" in text
    for column in report.columns:  # one table row and one plot caption per column
        row = f"{column.column} feature {column.kind} {column.method} {column.statistic:.4g}"
        assert row in text, row
        assert f"{column.column} — {column.method} {column.statistic:.4g} drifted" in text
