"""Evaluations, gates, cards, tuning and monitoring through a real ``modelpilot server``.

The SDK (``mp.init(server=..., token=...)``) and the installed ``modelpilot`` script evaluate
and gate a real sklearn model (the evaluation runs on the client; its record and HTML report
land on the server), write and read cards built by the server, tune with trials as runs on the
server, and run monitoring jobs that the server scores on the prediction log in its own home
(written there with ``PredictionLog``, as a data plane sharing that home does). Nothing is
written to the client's local store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelpilot as mp
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.errors import Forbidden, InvalidInput
from modelpilot.predictions import LogBatch, PredictionLog, log_folder
from modelpilot.registry.records import list_records
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.tracking import service
from modelpilot.workspace import Workspace
from mp_server import RunningServer, make_token, server_on

FEATURES = ["tenure", "calls"]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp(f"assess-{request.param}")
    with server_on(request.param, home) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server: RunningServer) -> dict[Role, str]:
    suffix = uuid.uuid4().hex[:6]
    return {r: make_token(server.store_uri, f"{r.label}-{suffix}", r) for r in Role}


@pytest.fixture
def sdk(server: RunningServer, tokens: dict[Role, str], tmp_path: Path) -> Iterator[Workspace]:
    """The SDK on the server with a deployer token; the process is left on a local home."""
    ws = mp.init(tmp_path / "client-home", server=server.url, token=tokens[Role.DEPLOYER])
    try:
        yield ws
    finally:
        mp.init(tmp_path / "local-home")
        mp.workspace().close()
    assert not (tmp_path / "client-home" / "modelpilot.db").exists()  # nothing written locally


def _server_store(server: RunningServer) -> Store:
    return Store.open(server.store_uri)


def _cli(
    server: RunningServer, token: str, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """The installed ``modelpilot`` script, pointed at the server."""
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(home),
        "MODELPILOT_SERVER_URI": server.url,
        "MODELPILOT_TOKEN": token,
        "COLUMNS": "200",
    }
    env.pop("MODELPILOT_STORE_URI", None)
    return subprocess.run([executable, *args], env=env, capture_output=True, text=True, timeout=180)


def _churn(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"tenure": rng.normal(shift, 1, rows), "calls": rng.normal(size=rows)})
    noise = rng.normal(scale=0.8, size=rows)
    return x.assign(churned=(x["tenure"] + 0.5 * x["calls"] + noise > 0).astype(int))


def _log_versions(name: str) -> tuple[mp.ModelVersion, mp.ModelVersion]:
    train = _churn(1000, seed=0)
    with mp.start_run("assess-over-server"):
        train_ds = mp.log_dataset(train, f"{name}-train")
        weak = LogisticRegression().fit(train[["tenure"]], train["churned"])
        v1 = mp.log_model(weak, name, input_example=train[["tenure"]].head(), datasets=[train_ds])
        strong = LogisticRegression().fit(train[FEATURES], train["churned"])
        v2 = mp.log_model(strong, name, input_example=train[FEATURES].head(), datasets=[train_ds])
    return v1, v2


def test_evaluate_gate_and_cards_go_through_the_server(
    sdk: Workspace, server: RunningServer, tokens: dict[Role, str], tmp_path: Path
) -> None:
    name = f"churn-{uuid.uuid4().hex[:6]}"
    v1, v2 = _log_versions(name)
    holdout = mp.log_dataset(_churn(300, seed=1), f"{name}-holdout")
    result = mp.evaluate(
        v2.ref,
        holdout.ref,
        target="churned",
        baseline=v1.ref,
        n_bootstrap=50,
        robustness=False,
        explain=False,
    )
    assert result.metrics["roc_auc"].value > 0.7 and result.comparison is not None

    policy = tmp_path / "gate.yaml"
    policy.write_text("metrics:\n  roc_auc: {min: 0.99}\n")
    data = ["--data", holdout.ref, "--target", "churned"]
    cli_home = tmp_path / "cli-home"
    editor = tokens[Role.EDITOR]
    failed = _cli(server, editor, cli_home, "gate", v2.ref, "--policy", str(policy), *data)
    assert failed.returncode == 9, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout and "roc_auc" in failed.stdout
    evaluated = _cli(server, editor, cli_home, "evaluate", v1.ref, *data)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "roc_auc" in evaluated.stdout
    assert not (cli_home / "modelpilot.db").exists()

    store = _server_store(server)  # the server's store holds every record, with its actor
    try:
        evaluations = list_records(store, v2.ref, "evaluation")  # mp.evaluate's, the gate's
        gates = list_records(store, v2.ref, "gate")
        assert len(list_records(store, v1.ref, "evaluation")) == 1  # the CLI's
    finally:
        store.close()
    assert len(evaluations) == 2
    evaluation = evaluations[-1]  # the oldest: mp.evaluate's, with the SDK's token
    assert evaluation.payload["dataset"] == holdout.ref
    assert evaluation.actor.startswith("token:deployer-")
    assert sdk.artifacts.get_bytes(evaluation.blob_digest or "").startswith(b"<!")
    assert [(g.payload["passed"], g.actor.split("-")[0]) for g in gates] == [
        (False, "token:editor")  # the CLI's verdict, signed by its token
    ]

    card = mp.update_model_card(v2.ref, intended_use="Rank customers for retention calls.")
    assert card.data["fields"] == {"intended_use": "Rank customers for retention calls."}
    assert card.data["evaluation"]["dataset"] == holdout.ref
    assert [g["passed"] for g in card.data["gates"]] == [False]
    page = card.save(tmp_path / "card.html").read_text()
    assert "Rank customers for retention calls." in page and "<svg" in page
    assert "| roc_auc |" in mp.model_card(v2.ref).to_markdown()
    dataset_card = mp.dataset_card(f"{name}-train")
    assert dataset_card.data["models"] == [v1.ref, v2.ref]


def test_writes_need_editor_and_blobs_must_be_on_the_server(
    sdk: Workspace, server: RunningServer, tokens: dict[Role, str], tmp_path: Path
) -> None:
    name = f"churn-{uuid.uuid4().hex[:6]}"
    _, v2 = _log_versions(name)
    viewer = Workspace(
        Settings(home=tmp_path / "viewer", server_uri=server.url, token=tokens[Role.VIEWER])
    )
    try:
        with pytest.raises(Forbidden, match="has role viewer; .* needs editor or higher"):
            viewer.registry.add_record(v2.ref, "note", {"text": "x"})
        with pytest.raises(Forbidden, match="needs editor or higher"):
            viewer.cards.update_card_fields(v2.ref, {"limitations": "x"})
        assert viewer.cards.model_card(v2.ref).data["model"]["ref"] == v2.ref  # reading is fine
    finally:
        viewer.close()
    with pytest.raises(InvalidInput, match=r"Blob 000000000000… is not on this server; upload"):
        sdk.registry.add_record(v2.ref, "evaluation", {}, blob_digest="0" * 64)
    with pytest.raises(InvalidInput, match="Unknown model card field\\(s\\) purpose"):
        mp.update_model_card(v2.ref, purpose="x")


def quadratic(params: Mapping[str, object]) -> float:
    x = float(params["x"])  # type: ignore[arg-type]
    mp.log_metric("inside_trial", x)  # the trial is the active run
    return -((x - 0.3) ** 2)


def test_tune_records_its_trials_as_runs_on_the_server(
    sdk: Workspace, server: RunningServer
) -> None:
    study = f"study-{uuid.uuid4().hex[:6]}"
    result = mp.tune(quadratic, {"x": (0.0, 1.0)}, n_trials=4, study_name=study, seed=3)
    again = mp.tune(quadratic, {"x": (0.0, 1.0)}, n_trials=5, study_name=study, seed=3)
    assert (again.resumed_trials, len(again.trials), again.parent_run_id) == (
        4,
        5,
        result.parent_run_id,
    )
    assert list((sdk.settings.home / "tuning").glob("*.journal"))  # the study's bookkeeping
    store = _server_store(server)
    try:
        parent = service.get_run(store, again.parent_run_id)
        best = service.get_run(store, again.best_run_id)
    finally:
        store.close()
    assert parent.tags["tuning.best_run"] == again.best_run_id
    assert best.tags["tuning.best"] == "true" and best.parent_run_id == parent.id
    assert best.metrics["score"] == pytest.approx(again.best_value)
    assert best.metrics["inside_trial"] == pytest.approx(again.best_params["x"])


def _log_traffic(home: Path, mv: mp.ModelVersion, deployment: str) -> None:
    """300 requests as the data plane logs them, into the server's home (tenure drifted)."""
    live = _churn(300, seed=5, shift=3.0)
    stamp = now_ms()
    rows = [
        {
            "model": mv.name,
            "request_id": f"r{i}",
            "row": 0,
            "timestamp_ms": stamp,
            "version": mv.version,
            "deployment": deployment,
            "variant": "stable",
            "latency_ms": 3.0,
            "error": None,
            "in.tenure": float(r.tenure),
            "in.calls": float(r.calls),
            "out.prediction": int(r.churned),
            "out.proba.0": 0.4,
            "out.proba.1": 0.6,
        }
        for i, r in enumerate(live.itertuples())
    ]
    log = PredictionLog(log_folder(home), durability="sync")
    log.start()
    try:
        for batch in LogBatch.from_rows(rows):
            log.append(batch)
    finally:
        log.close()


def test_monitoring_runs_on_the_servers_prediction_log(
    sdk: Workspace, server: RunningServer, tokens: dict[Role, str], tmp_path: Path
) -> None:
    name = f"churn-{uuid.uuid4().hex[:6]}"
    _, v2 = _log_versions(name)
    deployment = f"{name}-prod"
    mp.create_deployment(deployment, v2.ref)
    _log_traffic(server.home, v2, deployment)
    cli_home = tmp_path / "cli-home"
    ran = _cli(server, tokens[Role.EDITOR], cli_home, "monitor", "run", deployment, "-w", "1h")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ops.requests" in ran.stdout and "300" in ran.stdout
    assert "drifted: tenure" in ran.stdout
    assert "FIRING" in ran.stdout  # the default drift rule, raised by the client
    assert (cli_home / "alerts.jsonl").exists() and not (cli_home / "predictions").exists()

    (kept,) = sdk.monitoring.list_reports(deployment)
    assert kept.rows == 300 and kept.drift is not None and kept.model == v2.ref
    assert "tenure" in kept.drift.drifted_columns
    listed = _cli(server, tokens[Role.VIEWER], cli_home, "monitor", "reports", deployment)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert str(kept.report_id) in listed.stdout and v2.ref in listed.stdout
    again = sdk.monitoring.run(deployment, window_s=3600)
    assert again.figures == kept.figures  # the same window of the same log
    viewer = Workspace(
        Settings(home=tmp_path / "viewer", server_uri=server.url, token=tokens[Role.VIEWER])
    )
    try:
        with pytest.raises(Forbidden, match="needs editor or higher"):
            viewer.monitoring.run(deployment)
        assert viewer.monitoring.get_report(deployment, again.report_id).rows == 300
    finally:
        viewer.close()
    (alert,) = sdk.alerts.list_alerts(subject=deployment)  # recorded on the server
    assert (alert.alert.rule, alert.alert.state) == ("dataset-drift", "firing")
    store = _server_store(server)
    try:
        records = list_records(store, v2.ref, "monitoring")
    finally:
        store.close()
    assert [r.id for r in records] == [again.report_id, kept.report_id]
    assert records[1].actor.startswith("token:editor-")
