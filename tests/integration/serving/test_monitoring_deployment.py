"""Monitoring a served deployment: drift against the training data, late labels, alerts."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from conftest import Server, frame
from modelpilot import release
from modelpilot.assessment import evaluate_version
from modelpilot.cli.main import app
from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.predictions import read_predictions
from modelpilot.predictions.labels import log_labels
from modelpilot.workspace import Workspace
from mp_server import copy_home


@dataclass
class Monitored:
    """A served deployment with 600 logged requests (income drifted)."""

    server: Server
    ws: Workspace
    ids: list[str]
    name: str  # unique per test: on PostgreSQL the module's homes share one schema


@pytest.fixture
def monitored(
    start_server: Callable[..., Server], home: Path, tmp_path: Path
) -> Iterator[Monitored]:
    server_home = tmp_path / "home"
    copy_home(home, server_home)
    ws = Workspace(Settings(home=server_home))
    train = frame(2_000, seed=11)
    target = (train["calls"] + (train["income"] > 50) > 2).astype(int)
    with ws.start_run("monitoring"):
        ds = ws.log_dataset(train.assign(label=target), "train-set")
        mv = ws.log_model(
            LogisticRegression(max_iter=500).fit(train, target),
            "churn",
            input_example=train.head(),
            datasets=[ds],
        )
    name = f"churn-mon-{uuid.uuid4().hex[:8]}"
    release.create_deployment(ws.store, name, mv.ref)
    server = start_server(name, server_home=server_home)
    live = frame(600, seed=12)
    live["income"] = live["income"] + 8.0  # the population got richer: income drifts
    ids = []
    with httpx.Client() as client:
        for record in live.to_dict(orient="records"):
            ids.append(
                client.post(f"{server.url}/predict/{name}", json=[record]).json()["request_id"]
            )
    httpx.post(f"{server.url}/admin/flush")
    try:
        yield Monitored(server, ws, ids, name)
    finally:
        ws.close()


def test_monitor_finds_the_drifted_column_and_joins_late_labels(monitored: Monitored) -> None:
    ws, ids, name = monitored.ws, monitored.ids, monitored.name
    labels = dict(zip(ids[:300], [1] * 150 + [0] * 150, strict=True))
    log_labels(ws.settings.home, name, list(labels), list(labels.values()))
    result = ws.monitoring.run(name, window_s=3600)
    assert result.drift is not None
    assert "income" in result.drift.drifted_columns
    # (false-alarm rates of the detectors are tested statistically in tests/unit/monitoring)
    assert result.drift.column("income").statistic > result.drift.column("age").statistic
    assert result.figures["ops.requests"] == 600 and result.figures["ops.error_rate"] == 0.0
    assert result.figures["performance.labelled_rows"] == 300
    logged = read_predictions(ws.settings.home / "predictions", deployment=name)
    predicted = dict(zip(logged["request_id"], logged["out.prediction"], strict=True))
    hand_count = sum(int(predicted[rid]) == label for rid, label in labels.items())
    assert result.figures["performance.accuracy"] == pytest.approx(hand_count / 300)
    kept = ws.monitoring.list_reports(name)  # the report is kept, and reads back whole
    assert [r.report_id for r in kept] == [result.report_id]
    assert ws.monitoring.get_report(name, kept[0].report_id).to_dict() == result.to_dict()


def test_bad_labels_are_refused_and_nothing_is_stored(monitored: Monitored) -> None:
    ws, ids, name = monitored.ws, monitored.ids, monitored.name
    with pytest.raises(InvalidInput, match="1 of 2 request ids are not in the prediction log"):
        log_labels(ws.settings.home, name, [ids[0], "no-such-id"], [1, 0])
    with pytest.raises(InvalidInput, match=r"Label 1 \(request .*\) is \[1\] of type list"):
        log_labels(ws.settings.home, name, ids[:2], [1, [1]])
    with pytest.raises(InvalidInput, match="2 request ids but 1 labels"):
        log_labels(ws.settings.home, name, ids[:2], [1])
    assert not (ws.settings.home / "labels").exists()


def test_monitor_cli_alerts_and_writes_a_report(
    monitored: Monitored, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ws, name = monitored.ws, monitored.name
    monkeypatch.setenv("MODELPILOT_HOME", str(ws.settings.home))
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {name: any-drift, metric: drift.share_drifted, op: '>', threshold: 0.0}\n")
    result = CliRunner().invoke(
        app, ["monitor", "run", name, "--window", "1h", "--rules", str(rules)]
    )
    assert result.exit_code == 0, result.output
    assert "FIRING" in result.stdout and "any-drift" in result.stdout
    assert len((ws.settings.home / "alerts.jsonl").read_text().splitlines()) == 1  # one alert line
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["monitor", "report", name, "--window", "1d", "-o", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "<svg" in report.read_text() and report.with_suffix(".json").exists()


def test_monitor_weighs_dataset_drift_by_the_stored_permutation_importance(
    monitored: Monitored,
) -> None:
    ws, name = monitored.ws, monitored.name
    ref = release.get_deployment(ws.store, name).config.stable.ref
    train = frame(2_000, seed=11)
    labelled = train.assign(label=(train["calls"] + (train["income"] > 50) > 2).astype(int))
    evaluate_version(ws, ref, labelled, "label", n_bootstrap=0, robustness=False)
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {**os.environ, "MODELPILOT_HOME": str(ws.settings.home), "COLUMNS": "250"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [executable, "monitor", *args], env=env, capture_output=True, text=True, timeout=300
        )

    ran = cli("run", name, "--window", "1h")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (kept,) = ws.monitoring.list_reports(name)
    assert kept.drift is not None and kept.drift.decision is not None
    decision = kept.drift.decision
    assert decision.weights == "importance" and "income" in kept.drift.drifted_columns
    drifted_weight = sum(decision.column_weights[c] for c in kept.drift.drifted_columns)
    assert kept.figures["drift.weighted_share"] == pytest.approx(drifted_weight)
    assert kept.drift.dataset_drift == (drifted_weight >= 0.5)
    assert any("permutation importance from evaluation record" in n for n in kept.notes)
    assert f"dataset rule: {decision.rule};" in ran.stdout
    assert "importance weights" in ran.stdout
    listed = cli("reports", name)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "rule" in listed.stdout and decision.rule in listed.stdout
