"""Monitors that run themselves, on a controllable clock (no sleeps), SQLite and PostgreSQL:
a deployment's policy says how often to score which window; drifted traffic fires one alert
however long it lasts, a rule with ``for_s`` goes pending first, clean traffic resolves, and
the policy's ``on_alert`` trigger fires once. Two agents (two Store objects on one database)
monitor a window once; a broken monitor gives its error and the others still run."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.alerting import LocalAlerts
from modelpilot.data import DatasetVersion
from modelpilot.loop import MonitorOutcome, load_loop_policy, run_due_monitors, set_loop_policy
from modelpilot.monitoring.service import LocalMonitoring
from modelpilot.pipelines import Decision, evaluate_triggers
from modelpilot.predictions import LogBatch, log_folder, write_segments
from modelpilot.store import Store
from modelpilot.workspace import Workspace
from mp_race import race_on_stores

PIPELINE = Path(__file__).parents[1] / "pipelines" / "tiny_pipeline.py"
T0 = int(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC).timestamp() * 1000)
MINUTE = 60_000
POLICY = """\
triggers:
  - on_alert: dataset-drift
    subject: {deployment}
training: {{pipeline: tiny_pipeline.py:tiny}}
evaluation: {{window: 7d, target: label, gate: gate.yaml}}
{monitoring}"""
MONITORING = """\
monitoring:
  window: 1h
  every: 15m
  rules:
    - {name: dataset-drift, metric: drift.share_drifted, op: ">=", threshold: 0.3}
    - {name: slow-drift, metric: drift.share_drifted, op: ">=", threshold: 0.3, for_s: 1200}
"""


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(shift, 1.0, n), "b": rng.normal(0.0, 1.0, n)})
    return x.assign(label=(x["a"] + x["b"] > 0).astype(int))


def _deploy(
    ws: Workspace, folder: Path, name: str, *, datasets: dict[str, DatasetVersion],
    monitoring: str = MONITORING,
) -> LogisticRegression:  # fmt: skip
    """A deployment of a model fit on ``_frame(500, seed=1)``, with a policy set at T0 - 1h."""
    train = _frame(500, seed=1)
    model = LogisticRegression().fit(train[["a", "b"]], train["label"])
    mv = ws.log_model(model, name, input_example=train[["a", "b"]].head(), datasets=datasets)
    release.create_deployment(ws.store, f"{name}-prod", mv.ref, actor="t")
    shutil.copy(PIPELINE, folder / "tiny_pipeline.py")
    (folder / "gate.yaml").write_text("latency: {max_p99_ms: 5}\n")
    policy = folder / f"{name}.yaml"
    policy.write_text(POLICY.format(deployment=f"{name}-prod", monitoring=monitoring))
    set_loop_policy(ws.store, f"{name}-prod", load_loop_policy(policy), actor="alice",
                    now_ms=T0 - 60 * MINUTE)  # fmt: skip
    return model


def _serve(
    ws: Workspace, name: str, model: LogisticRegression, at_ms: int, *, seed: int,
    shift: float = 0.0,
) -> None:  # fmt: skip
    """400 requests to ``<name>-prod`` logged at ``at_ms`` (one a millisecond), as the data
    plane logs them: inputs, the model's prediction and probabilities."""
    live = _frame(400, seed=seed, shift=shift)[["a", "b"]]
    proba = model.predict_proba(live)
    rows = [
        {
            "model": name, "request_id": f"{name}-{at_ms}-{i}", "row": 0,
            "timestamp_ms": at_ms + i, "version": 1, "deployment": f"{name}-prod",
            "variant": "stable", "latency_ms": 2.0, "error": None, "in.a": float(a),
            "in.b": float(b), "out.prediction": int(proba[i, 1] > 0.5),
            "out.proba.0": float(proba[i, 0]), "out.proba.1": float(proba[i, 1]),
        }
        for i, (a, b) in enumerate(live.to_numpy())
    ]  # fmt: skip
    write_segments(log_folder(ws.settings.home), LogBatch.from_rows(rows))


@pytest.fixture
def churn(ws: Workspace, tmp_path: Path) -> LogisticRegression:
    train = ws.log_dataset(_frame(500, seed=1), "churn-train")
    return _deploy(ws, tmp_path, "churn", datasets={"training": train})


def _monitoring(ws: Workspace, store: Store | None = None) -> LocalMonitoring:
    return LocalMonitoring(store or ws.store, ws.artifacts, ws.settings.home, actor="agent:a1")


def _line(outcome: MonitorOutcome, alerts: str) -> str:
    assert outcome.result is not None
    share = outcome.result.figures["drift.share_drifted"]
    return f"monitored churn-prod (1h, 400 rows): drift.share_drifted={share:.4g}{alerts}"


def test_drift_fires_once_while_it_lasts_resolves_when_clean_and_the_trigger_fires_once(
    ws: Workspace, churn: LogisticRegression
) -> None:
    monitoring = _monitoring(ws)

    def run(at_ms: int) -> list[MonitorOutcome]:
        return run_due_monitors(ws.store, monitoring, at_ms, actor="agent:a1")

    _serve(ws, "churn", churn, T0 - 20 * MINUTE, seed=2, shift=3.0)  # income drifted
    [first] = run(T0)
    assert first.result is not None and first.result.figures["drift.share_drifted"] >= 0.3
    assert first.line() == _line(first, " -> alert dataset-drift firing; alert slow-drift pending")
    assert [(r.alert.state, r.alert.time_ms, r.actor) for r in first.alerts] == [
        ("firing", T0, "agent:a1"),
        ("pending", T0, "agent:a1"),
    ]
    assert run(T0 + 14 * MINUTE) == []  # every 15m: not due yet
    [second] = run(T0 + 15 * MINUTE)  # the same drifted rows are still in the window
    assert second.alerts == () and second.line() == _line(second, "")
    [third] = run(T0 + 30 * MINUTE)  # slow-drift has held 30m >= its 20m (for_s: 1200)
    assert [(r.alert.rule, r.alert.state, r.alert.since_ms, r.alert.time_ms)
            for r in third.alerts] == [("slow-drift", "firing", T0, T0 + 30 * MINUTE)]  # fmt: skip
    _serve(ws, "churn", churn, T0 + 90 * MINUTE, seed=1)  # rows of the training data itself
    [fourth] = run(T0 + 120 * MINUTE)
    assert fourth.result is not None and fourth.result.figures["drift.share_drifted"] < 0.3
    assert fourth.line() == _line(
        fourth, " -> alert dataset-drift resolved; alert slow-drift resolved"
    )

    recorded = LocalAlerts(ws.store).list_alerts(subject="churn-prod")
    assert [(r.alert.rule, r.alert.state, r.alert.time_ms) for r in reversed(recorded)] == [
        ("dataset-drift", "firing", T0),
        ("slow-drift", "pending", T0),
        ("slow-drift", "firing", T0 + 30 * MINUTE),
        ("dataset-drift", "resolved", T0 + 120 * MINUTE),
        ("slow-drift", "resolved", T0 + 120 * MINUTE),
    ]
    reports = ws.monitoring.list_reports("churn-prod")
    assert [r.window_end_ms - T0 for r in reports] == [m * MINUTE for m in (120, 30, 15, 0)]
    [fired] = evaluate_triggers(ws.store, T0 + 120 * MINUTE, launch=None, actor="agent:a1")
    assert (fired.trigger_name, fired.decision, fired.due_ms) == (
        "churn-prod.1",
        Decision.FIRED,
        T0,
    )
    assert fired.reason.startswith("alert dataset-drift on churn-prod")
    assert evaluate_triggers(ws.store, T0 + 121 * MINUTE, launch=None) == []


def test_the_state_is_in_the_store_so_a_restarted_agent_continues_it(
    ws: Workspace, churn: LogisticRegression
) -> None:
    _serve(ws, "churn", churn, T0 - 20 * MINUTE, seed=2, shift=3.0)
    run_due_monitors(ws.store, _monitoring(ws), T0, actor="agent:a1")
    uri = ws.store.engine.url.render_as_string(hide_password=False)
    restarted = Store.open(uri)
    try:  # a new process: nothing in memory, still firing, so nothing new is recorded
        [again] = run_due_monitors(restarted, _monitoring(ws, restarted), T0 + 15 * MINUTE,
                                   actor="agent:a2")  # fmt: skip
    finally:
        restarted.close()
    assert again.alerts == ()
    assert len(LocalAlerts(ws.store).list_alerts(subject="churn-prod", state="firing")) == 1


def test_two_agents_at_the_same_time_monitor_the_window_once_and_record_one_firing(
    ws: Workspace, churn: LogisticRegression
) -> None:
    _serve(ws, "churn", churn, T0 - 20 * MINUTE, seed=2, shift=3.0)
    uri = ws.store.engine.url.render_as_string(hide_password=False)
    outcomes = race_on_stores(
        uri,
        lambda store, slot: run_due_monitors(
            store, _monitoring(ws, store), T0, actor=f"agent:a{slot}"
        ),
    )
    # one agent claimed the window; the other found it not due
    [outcome] = outcomes[0] + outcomes[1]
    assert outcome.error is None
    assert len(ws.monitoring.list_reports("churn-prod")) == 1
    firing = LocalAlerts(ws.store).list_alerts(subject="churn-prod", state="firing")
    assert [r.alert.rule for r in firing] == ["dataset-drift"]


def test_a_broken_monitor_reports_its_error_and_others_still_run_and_unmonitored_are_left(
    ws: Workspace, churn: LogisticRegression, tmp_path: Path
) -> None:
    holdout = ws.log_dataset(_frame(100, seed=5), "holdout")
    broken = _deploy(ws, tmp_path, "broken", datasets={"test": holdout})  # no reference
    _deploy(ws, tmp_path, "quiet", datasets={})  # monitored, but no traffic logged
    _deploy(ws, tmp_path, "plain", datasets={}, monitoring="")  # no monitoring section
    _serve(ws, "broken", broken, T0 - 20 * MINUTE, seed=2)
    _serve(ws, "churn", churn, T0 - 20 * MINUTE, seed=2, shift=3.0)
    outcomes = run_due_monitors(ws.store, _monitoring(ws), T0, actor="agent:a1")
    assert [o.deployment for o in outcomes] == ["broken-prod", "churn-prod", "quiet-prod"]
    assert (
        outcomes[0]
        .line()
        .startswith(
            "monitoring broken-prod failed: Cannot pick a drift reference for broken/1: it has no "
            "dataset with role 'reference' or 'training'; it has holdout (test)."
        )
    )
    assert [r.alert.rule for r in outcomes[1].alerts] == ["dataset-drift", "slow-drift"]
    assert outcomes[2].line() == "monitored quiet-prod: no logged requests in the window"
    # a failed run is tried again after `every`, not at each iteration
    assert run_due_monitors(ws.store, _monitoring(ws), T0 + MINUTE, actor="agent:a1") == []
    again = run_due_monitors(ws.store, _monitoring(ws), T0 + 15 * MINUTE, actor="agent:a1")
    assert [o.deployment for o in again] == ["broken-prod", "churn-prod", "quiet-prod"]
