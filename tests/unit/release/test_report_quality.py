"""`deploy report` scores each variant's predictions against the labels and names the metric.

The old "outcome" column was the mean label: two variants seeing the same customers showed
the same figure whatever their predictions were worth.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.predictions import LogBatch, write_segments
from modelpilot.predictions.labels import log_labels
from modelpilot.release.report import ab_report, quality_against_labels
from modelpilot.workspace import Workspace


def _log(ws: Workspace, rows: list[dict[str, object]], labels: list[object]) -> None:
    write_segments(ws.settings.home / "predictions", LogBatch.from_rows(rows))
    log_labels(ws.settings.home, "shop", [str(r["request_id"]) for r in rows], labels)


def _row(i: int, variant: str, **outputs: object) -> dict[str, object]:
    return {
        "request_id": f"r{i}",
        "row": 0,
        "timestamp_ms": 1_000 + i,
        "model": "m",
        "version": 1 if variant == "stable" else 2,
        "deployment": "shop",
        "variant": variant,
        "latency_ms": 5.0,
        "error": None,
        "in.a": 1.0,
        **outputs,
    }


def _classifier_traffic(ws: Workspace, n: int = 2_000) -> None:
    """Same customers (half churn) for both variants; the stable ranks them far better."""
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(n):
        variant = "stable" if i % 2 == 0 else "challenger"
        label = int(rng.random() < 0.5)
        noise = 0.15 if variant == "stable" else 0.45
        distance = min(abs(float(rng.normal(0, noise))), 1.0)  # from the true class
        p1 = 1 - distance if label == 1 else distance
        outputs = {"out.prediction": int(p1 > 0.5), "out.proba.0": 1 - p1, "out.proba.1": p1}
        rows.append(_row(i, variant, **outputs))
        labels.append(label)
    _log(ws, rows, labels)


@pytest.fixture
def shop(ws: Workspace) -> Workspace:
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    for _ in range(2):
        ws.log_model(LogisticRegression().fit(x, [0, 1, 0, 1]), "m", input_example=x)
    release.create_deployment(ws.store, "shop", "m/1")
    release.set_ab(ws.store, "shop", "m/2", 50, "user_id")
    return ws


def test_classifier_variants_get_accuracy_and_auc_not_just_the_mean_label(
    shop: Workspace,
) -> None:
    _classifier_traffic(shop)
    report = ab_report(shop.deployments, shop.settings.home, "shop")
    by_name = {v.variant: v for v in report.variants}
    stable, challenger = by_name["stable"], by_name["challenger"]
    assert set(stable.quality) == {"accuracy", "roc_auc"} and stable.quality_n == 1_000
    assert stable.quality["accuracy"] > 0.9 > challenger.quality["accuracy"]
    assert stable.quality["roc_auc"] > challenger.quality["roc_auc"] + 0.05
    assert stable.outcome_mean == pytest.approx(challenger.outcome_mean, abs=0.06)


def test_regression_variants_get_mae_and_rmse(shop: Workspace) -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(100, 10, 1_000)
    rows = [
        _row(i, "stable" if i % 2 == 0 else "challenger", **{"out.prediction": float(t + e)})
        for i, (t, e) in enumerate(zip(truth, rng.normal(0, 2, 1_000), strict=True))
    ]
    _log(shop, rows, [float(t) for t in truth])
    stable = ab_report(shop.deployments, shop.settings.home, "shop").variants[0]
    assert set(stable.quality) == {"mae", "rmse"}
    assert stable.quality["mae"] == pytest.approx(2 * np.sqrt(2 / np.pi), rel=0.15)


def test_string_labels_are_scored_by_accuracy() -> None:
    rows = pd.DataFrame({"label": ["a", "b", "b", "a"], "out.prediction": ["a", "b", "a", "a"]})
    assert quality_against_labels(rows) == ({"accuracy": 0.75}, 4)


def test_deploy_report_names_the_metric_through_the_installed_executable(
    shop: Workspace,
) -> None:
    _classifier_traffic(shop, n=400)
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {**os.environ, "MODELPILOT_HOME": str(shop.settings.home), "COLUMNS": "200"}
    if shop.settings.store_uri:
        env["MODELPILOT_STORE_URI"] = shop.settings.store_uri
    table = subprocess.run(
        [executable, "deploy", "report", "shop"], env=env, capture_output=True, text=True
    )
    assert table.returncode == 0, table.stderr
    assert "quality vs labels" in table.stdout and "mean label" in table.stdout
    assert "accuracy 0." in table.stdout and "AUC 0." in table.stdout
    as_json = subprocess.run(
        [executable, "deploy", "report", "shop", "--json"], env=env, capture_output=True, text=True
    )
    assert as_json.returncode == 0, as_json.stderr
    variants = json.loads(as_json.stdout)["variants"]
    assert {v["variant"]: v["quality_n"] for v in variants} == {"stable": 200, "challenger": 200}
