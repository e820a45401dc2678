"""Performance by slice through the user's path: a model evaluated with ``slices=["region"]``
is deployed with a policy whose ``monitoring:`` section gives no rules (so the default rules,
``slice-performance-drop`` among them); the agent's monitor fires when the labels that come
back for one region get worse (the total moves far less), names the slice in the alert, keeps the
per-slice table in the stored report, and resolves once the region recovers; ``modelpilot
monitor run`` (the installed executable) prints the table and the alert."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from loop_files import installed_exe
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.alerting import LocalAlerts
from modelpilot.assessment import evaluate_version
from modelpilot.loop import parse_loop_policy, run_due_monitors, set_loop_policy
from modelpilot.monitoring.service import LocalMonitoring
from modelpilot.monitoring.slice_performance import SLICE_DROP
from modelpilot.predictions import LogBatch, log_folder, write_segments
from modelpilot.predictions.labels import log_labels
from modelpilot.workspace import Workspace

T0 = int(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC).timestamp() * 1000)
MINUTE = 60_000
POLICY = """\
triggers: [{manual: true}]
training: {pipeline: "t.py:p"}
evaluation: {dataset: churn-test, target: label, gate: g.yaml}
monitoring: {window: 1h, every: 15m}
"""
FEATURES = ["a", "b", "region"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "region": rng.choice([0.0, 1.0, 2.0, 3.0], n),
        }
    )
    return x.assign(label=(x["a"] + x["b"] + rng.normal(0, 0.8, n) > 0).astype(int))


@pytest.fixture
def deployed(ws: Workspace) -> LogisticRegression:
    train, test = _frame(3000, seed=1), _frame(4000, seed=2)
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    training = ws.log_dataset(train, "churn-train")
    held_out = ws.log_dataset(test, "churn-test", role="evaluation")
    mv = ws.log_model(
        model, "churn", input_example=train[FEATURES].head(), datasets={"training": training}
    )
    evaluate_version(ws, mv.ref, held_out, "label", slices=["region"], n_bootstrap=200,
                     robustness=False, explain=False)  # fmt: skip
    release.create_deployment(ws.store, "churn-prod", mv.ref, actor="t")
    loaded = parse_loop_policy(POLICY, source="loop.yaml", check_files=False)
    set_loop_policy(ws.store, "churn-prod", loaded, actor="alice", now_ms=T0 - 60 * MINUTE)
    return model


def _serve_and_label(
    ws: Workspace, model: LogisticRegression, at_ms: int, *, seed: int, noisy_region: float | None
) -> None:
    """4,000 requests logged at ``at_ms``, then their labels; in ``noisy_region`` a third of
    the labels are coin flips (the model got worse there), elsewhere they are the truth."""
    live = _frame(4000, seed=seed)
    proba = model.predict_proba(live[FEATURES])
    ids = [f"r-{at_ms}-{i}" for i in range(len(live))]
    rows = [
        {
            "model": "churn", "request_id": ids[i], "row": 0, "timestamp_ms": at_ms + i,
            "version": 1, "deployment": "churn-prod", "variant": "stable", "latency_ms": 2.0,
            "error": None, "in.a": a, "in.b": b, "in.region": region,
            "out.prediction": int(proba[i, 1] > 0.5), "out.proba.0": float(proba[i, 0]),
            "out.proba.1": float(proba[i, 1]),
        }
        for i, (a, b, region) in enumerate(live[FEATURES].to_numpy().tolist())
    ]  # fmt: skip
    write_segments(log_folder(ws.settings.home), LogBatch.from_rows(rows))
    rng = np.random.default_rng(seed + 1000)
    labels = live["label"].to_numpy()
    if noisy_region is not None:
        flip = (live["region"].to_numpy() == noisy_region) & (rng.random(len(live)) < 1 / 3)
        labels = np.where(flip, rng.integers(0, 2, len(live)), labels)
    log_labels(ws.settings.home, "churn-prod", ids, labels.tolist())


def test_the_agent_alerts_on_a_region_that_falls_beyond_the_total_and_keeps_the_table(
    ws: Workspace, deployed: LogisticRegression
) -> None:
    monitoring = LocalMonitoring(ws.store, ws.artifacts, ws.settings.home, actor="agent:a1")
    _serve_and_label(ws, deployed, T0 - 20 * MINUTE, seed=3, noisy_region=0.0)

    [outcome] = run_due_monitors(ws.store, monitoring, T0, actor="agent:a1")

    assert outcome.error is None and outcome.result is not None
    report = outcome.result.slices
    assert report is not None and report.metric == "roc_auc"
    region0 = next(s for s in report.slices if s.label == "region=0.0")
    assert region0.source == "realised" and region0.n_labels == region0.n_rows > 900
    assert region0.reference_lower is not None  # the evaluation's interval is taken into account
    assert region0.drop is not None and region0.drop > report.overall_drop + 0.03
    assert [(r.alert.rule, r.alert.state) for r in outcome.alerts] == [
        ("slice-performance-drop", "firing")
    ]
    message = outcome.alerts[0].alert.message
    assert "performance.slice_drop of churn-prod is" in message
    assert f"slice region=0.0: roc_auc {region0.reference:.3g} in the evaluation -> " in message
    assert f"95% interval {region0.lower:.3g}-{region0.upper:.3g}, realised" in message
    assert "alert slice-performance-drop firing" in outcome.line()

    [kept] = ws.monitoring.list_reports("churn-prod")  # the time series the report reads
    assert kept.slices == report and kept.figures[SLICE_DROP] == report.slice_drop

    _serve_and_label(ws, deployed, T0 + 70 * MINUTE, seed=4, noisy_region=None)
    [recovered] = run_due_monitors(ws.store, monitoring, T0 + 120 * MINUTE, actor="agent:a1")
    assert recovered.result is not None and recovered.result.figures[SLICE_DROP] < 0.03
    assert [(r.alert.rule, r.alert.state) for r in recovered.alerts] == [
        ("slice-performance-drop", "resolved")
    ]
    fired = LocalAlerts(ws.store).list_alerts(subject="churn-prod")
    assert [r.alert.state for r in reversed(fired)] == ["firing", "resolved"]


def test_monitor_run_prints_the_slice_table_and_the_alert_naming_the_slice(
    ws: Workspace, deployed: LogisticRegression
) -> None:
    now = int(time.time() * 1000)
    _serve_and_label(ws, deployed, now - 10 * MINUTE, seed=3, noisy_region=0.0)
    env = {**os.environ, "MODELPILOT_HOME": str(ws.settings.home), "COLUMNS": "400"}
    env.pop("MODELPILOT_STORE_URI", None)
    if ws.settings.store_uri:
        env["MODELPILOT_STORE_URI"] = ws.settings.store_uri
    ran = subprocess.run(
        [installed_exe(), "monitor", "run", "churn-prod", "--window", "1h"],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "roc_auc by slice: slice region=0.0: roc_auc" in ran.stdout
    assert "fell beyond the total" in ran.stdout  # the table marks the slice
    assert "slice-performance-drop: performance.slice_drop of churn-prod is" in ran.stdout
    [kept] = ws.monitoring.list_reports("churn-prod")
    assert kept.slices is not None and kept.details[SLICE_DROP] in ran.stdout
