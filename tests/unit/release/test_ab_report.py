"""`modelpilot deploy report`: per-variant figures and a sequential verdict from log + labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelpilot import release
from modelpilot.cli.main import app
from modelpilot.predictions import LogBatch, write_segments
from modelpilot.predictions.labels import log_labels
from modelpilot.release.report import ab_report
from modelpilot.workspace import Workspace


def _traffic(ws: Workspace, rng: np.random.Generator, n: int, rates: dict[str, float]) -> None:
    """Write log rows as the server would, then labels with each variant's conversion rate."""
    rows, ids, labels = [], [], []
    for i in range(n):
        variant = "stable" if rng.random() < 0.5 else "challenger"
        rid = f"r{i}"
        rows.append(
            {
                "request_id": rid,
                "row": 0,
                "timestamp_ms": 1_000 + i,
                "model": "m",
                "version": 1 if variant == "stable" else 2,
                "deployment": "shop",
                "variant": variant,
                "latency_ms": float(rng.gamma(2, 2)),
                "error": None,
                "in.a": 1.0,
                "out.prediction": 0,
            }
        )
        ids.append(rid)
        labels.append(int(rng.random() < rates[variant]))
    write_segments(ws.settings.home / "predictions", LogBatch.from_rows(rows))
    log_labels(ws.settings.home, "shop", ids, labels)


@pytest.fixture
def shop(ws: Workspace) -> Workspace:
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    for _ in range(2):
        ws.log_model(LogisticRegression().fit(x, [0, 1, 0, 1]), "m", input_example=x)
    release.create_deployment(ws.store, "shop", "m/1")
    release.set_ab(ws.store, "shop", "m/2", 50, "user_id")
    return ws


def test_report_declares_a_winner_when_the_challenger_converts_better(shop: Workspace) -> None:
    _traffic(shop, np.random.default_rng(0), 8_000, {"stable": 0.10, "challenger": 0.15})
    report = ab_report(shop.deployments, shop.settings.home, "shop")
    by_name = {v.variant: v for v in report.variants}
    assert by_name["stable"].requests + by_name["challenger"].requests == 8_000
    assert by_name["challenger"].outcome_mean == pytest.approx(0.15, abs=0.02)
    assert report.verdict.startswith("Winner: challenger")


def test_report_says_no_winner_yet_on_an_aa_test(
    shop: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _traffic(shop, np.random.default_rng(1), 2_000, {"stable": 0.10, "challenger": 0.10})
    monkeypatch.setenv("MODELPILOT_HOME", str(shop.settings.home))
    if shop.settings.store_uri:
        monkeypatch.setenv("MODELPILOT_STORE_URI", shop.settings.store_uri)
    result = CliRunner().invoke(app, ["deploy", "report", "shop", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verdict"].startswith("No winner yet")
