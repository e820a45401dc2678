"""Monitoring a served deployment: drift against the training data, late labels, alerts."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from conftest import Server, frame
from modelpilot import release
from modelpilot.cli.main import app
from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.monitoring.jobs import monitor_deployment
from modelpilot.monitoring.labels import log_labels
from modelpilot.workspace import Workspace


@pytest.fixture
def monitored(
    start_server: Callable[..., Server], home: Path, tmp_path: Path
) -> tuple[Server, Workspace, list[str]]:
    server_home = tmp_path / "home"
    shutil.copytree(home, server_home, ignore=shutil.ignore_patterns("predictions"))
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
    release.create_deployment(ws.store, "churn-mon", mv.ref)
    server = start_server("churn-mon", server_home=server_home)
    live = frame(600, seed=12)
    live["income"] = live["income"] + 8.0  # the population got richer: income drifts
    ids = []
    with httpx.Client() as client:
        for record in live.to_dict(orient="records"):
            ids.append(
                client.post(f"{server.url}/predict/churn-mon", json=[record]).json()["request_id"]
            )
    httpx.post(f"{server.url}/admin/flush")
    return server, ws, ids


def test_monitor_finds_the_drifted_column_and_joins_late_labels(
    monitored: tuple[Server, Workspace, list[str]],
) -> None:
    _, ws, ids = monitored
    log_labels(ws.settings.home, "churn-mon", ids[:300], [1] * 150 + [0] * 150)
    result = monitor_deployment(ws, "churn-mon", window_s=3600)
    assert result.drift is not None
    assert "income" in result.drift.drifted_columns
    # (false-alarm rates of the detectors are tested statistically in tests/unit/monitoring)
    assert result.drift.column("income").statistic > result.drift.column("age").statistic
    assert result.figures["ops.requests"] == 600 and result.figures["ops.error_rate"] == 0.0
    assert result.figures["performance.labelled_rows"] == 300
    assert 0.0 <= result.figures["performance.accuracy"] <= 1.0


def test_bad_labels_are_refused_and_nothing_is_stored(
    monitored: tuple[Server, Workspace, list[str]],
) -> None:
    _, ws, ids = monitored
    with pytest.raises(InvalidInput, match="1 of 2 request ids are not in the prediction log"):
        log_labels(ws.settings.home, "churn-mon", [ids[0], "no-such-id"], [1, 0])
    with pytest.raises(InvalidInput, match=r"Label 1 \(request .*\) is \[1\] of type list"):
        log_labels(ws.settings.home, "churn-mon", ids[:2], [1, [1]])
    with pytest.raises(InvalidInput, match="2 request ids but 1 labels"):
        log_labels(ws.settings.home, "churn-mon", ids[:2], [1])
    assert not (ws.settings.home / "labels").exists()


def test_monitor_cli_alerts_and_writes_a_report(
    monitored: tuple[Server, Workspace, list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, ws, _ = monitored
    monkeypatch.setenv("MODELPILOT_HOME", str(ws.settings.home))
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {name: any-drift, metric: drift.share_drifted, op: '>', threshold: 0.0}\n")
    result = CliRunner().invoke(
        app, ["monitor", "run", "churn-mon", "--window", "1h", "--rules", str(rules)]
    )
    assert result.exit_code == 0, result.output
    assert "FIRING" in result.stdout and "any-drift" in result.stdout
    assert len((ws.settings.home / "alerts.jsonl").read_text().splitlines()) == 1  # one alert line
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["monitor", "report", "churn-mon", "--window", "1d", "-o", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "<svg" in report.read_text() and report.with_suffix(".json").exists()
