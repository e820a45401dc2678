"""The installed ``modelpilot`` executable against a real ``modelpilot server`` process.

With ``MODELPILOT_SERVER_URI`` and ``MODELPILOT_TOKEN`` set, ``runs``, ``models`` (cards too),
``datasets``, ``deploy``, ``alerts``, ``tokens`` and ``audit`` read and change the server's
store, as the token's identity, and no metadata store is made in the local home; a token whose
role is too low gets one clear line and a non-zero exit code; ``audit verify`` exits 0 on the
server's intact chain and 10 once a row is edited in the server's database.

The prediction log stays with the data plane that wrote it: here the CLI's home, written with
``PredictionLog`` as ``modelpilot serve --server`` does. ``deploy watch`` reads it and changes
the server's deployment; ``deploy report``, ``logs``, ``mp.log_labels`` and
``mp.read_predictions`` read it too, with deployments checked by the server; ``score`` loads
the model from the server.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelpilot as mp
from modelpilot.alerting import AlertManager, AlertRule, ServiceSink
from modelpilot.cli.main import main
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.errors import AuditChainBroken, Forbidden, NotFound
from modelpilot.predictions import LogBatch, PredictionLog, log_folder
from modelpilot.server.auth import Role
from modelpilot.workspace import Workspace
from mp_server import RunningServer, make_token, start_server


@dataclass
class Team:
    """A server, a token per role, and what the editor logged through the SDK."""

    server: RunningServer
    tokens: dict[Role, str]
    names: dict[Role, str]
    home: Path  # the CLI's own MODELPILOT_HOME: must stay empty
    run_id: str
    model: str


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("cli-over-server")
    server = start_server(root / "server", f"sqlite:///{root / 'server' / 'mp.db'}")
    names = {r: f"cli-{r.label}" for r in Role}
    tokens = {r: make_token(server.store_uri, names[r], r) for r in Role}
    sdk = Workspace(Settings(home=root / "sdk", server_uri=server.url, token=tokens[Role.EDITOR]))
    model = f"churn-{uuid.uuid4().hex[:6]}"
    try:
        frame = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 2)), columns=["a", "b"])
        with sdk.start_run("cli-exp", name="first") as run:
            sdk.log_metric("auc", 0.91)
            sdk.log_dataset(frame, "cli-train")
            fitted = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
            sdk.log_model(fitted, model, input_example=frame.head())
            sdk.log_model(fitted, model, input_example=frame.head())
        rule = AlertRule(name="errors", metric="ops.error_rate", op=">", threshold=0.05)
        AlertManager([rule], [ServiceSink(sdk.alerts)]).observe("cli-prod", "ops.error_rate", 0.2)
    finally:
        sdk.close()
    yield Team(server, tokens, names, root / "cli-home", run.id, model)
    server.stop()


def _cli(
    team: Team, role: Role, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed executable, as ``role``'s token (or ``token``)."""
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(team.home),
        "MODELPILOT_SERVER_URI": team.server.url,
        "MODELPILOT_TOKEN": token or team.tokens[role],
        "COLUMNS": "250",
    }
    return subprocess.run([executable, *args], env=env, capture_output=True, text=True, timeout=120)


def _in_process(
    team: Team, role: Role, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The same command through ``modelpilot.cli.main.main`` in this process (a subprocess
    costs seconds of imports; the executable itself is exercised by the calls above)."""
    env = {
        "MODELPILOT_HOME": str(team.home),
        "MODELPILOT_SERVER_URI": team.server.url,
        "MODELPILOT_TOKEN": token or team.tokens[role],
        "COLUMNS": "250",
    }
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setattr(sys, "stdout", out)
        patch.setattr(sys, "stderr", err)
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_info:
            code = int(exit_info.code or 0)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _ok(process: subprocess.CompletedProcess[str]) -> str:
    assert process.returncode == 0, process.stderr
    return process.stdout


def test_runs_list_and_show_by_prefix_read_the_servers_runs(team: Team) -> None:
    listed = json.loads(_ok(_cli(team, Role.VIEWER, "runs", "list", "-e", "cli-exp", "--json")))
    assert [r["run_id"] for r in listed] == [team.run_id]
    assert listed[0]["metrics.auc"] == 0.91
    shown = _ok(_cli(team, Role.VIEWER, "runs", "show", team.run_id[:8]))
    assert f"Run {team.run_id}" in shown and "FINISHED" in shown and "cli-train@" in shown
    missing = _in_process(team, Role.VIEWER, "runs", "show", "zzzzzzzz")
    assert missing.returncode == 3 and "No run with id 'zzzzzzzz'" in missing.stderr


def test_models_and_datasets_list_and_show(team: Team) -> None:
    models = json.loads(_ok(_cli(team, Role.VIEWER, "models", "list", "--json")))
    assert {m["name"]: m["latest_version"] for m in models}[team.model] == 2
    versions = json.loads(_ok(_cli(team, Role.VIEWER, "models", "show", team.model, "--json")))
    assert [v["version"] for v in versions] == [2, 1]
    assert {v["run_id"] for v in versions} == {team.run_id}
    lineage = _ok(_in_process(team, Role.VIEWER, "models", "show", f"{team.model}/1"))
    assert team.run_id[:8] in lineage and "cli-train" in lineage
    datasets = json.loads(_ok(_cli(team, Role.VIEWER, "datasets", "list", "--json")))
    assert [(d["name"], d["rows"]) for d in datasets] == [("cli-train", 60)]


def test_deploy_create_canary_promote_rollback_and_history(team: Team) -> None:
    name, v1, v2 = "cli-prod", f"{team.model}/1", f"{team.model}/2"

    def deploy(*args: str) -> str:
        return _ok(_cli(team, Role.DEPLOYER, "deploy", *args))

    def deploy_in_process(*args: str) -> str:
        return _ok(_in_process(team, Role.DEPLOYER, "deploy", *args))

    deploy("create", name, "-m", v1)
    canary = deploy("canary", name, "-m", v2, "-w", "10")
    assert "10%" in canary and "90%" in canary
    moved = deploy_in_process("weight", name, "25", "--expect-revision", "2")
    assert "25%" in moved and "75%" in moved
    back = deploy("rollback", name, "-r", "latency")
    assert v2 not in back and "100%" in back
    deploy_in_process("canary", name, "-m", v2, "-w", "50")
    deploy("promote", name, "-r", "canary healthy")
    status = json.loads(_ok(_in_process(team, Role.VIEWER, "deploy", "status", name, "--json")))
    assert status["revision"] == 6
    variants = status["config"]["variants"]
    assert [(v["model"], v["version"], v["weight"]) for v in variants] == [(team.model, 2, 100)]
    history = json.loads(_ok(_cli(team, Role.VIEWER, "deploy", "history", name, "--json")))
    actions = [h["action"] for h in history]
    assert actions == ["promote", "canary", "rollback", "set_weight", "canary", "create"]
    assert {h["actor"] for h in history} == {f"token:{team.names[Role.DEPLOYER]}"}
    assert (history[0]["reason"], history[2]["reason"]) == (
        "canary healthy",
        "latency (back to revision 1)",
    )
    listed = _ok(_in_process(team, Role.VIEWER, "deploy", "list"))
    assert f"{name} (revision 6" in listed
    stale = _in_process(
        team, Role.DEPLOYER, "deploy", "weight", name, "30", "--expect-revision", "1"
    )
    assert stale.returncode == 4 and "revision" in stale.stderr


def test_a_viewer_promoting_gets_one_clear_line_and_exit_5(team: Team) -> None:
    refused = _cli(team, Role.VIEWER, "deploy", "promote", "cli-prod")
    assert refused.returncode == Forbidden.exit_code == 5
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert f"Token '{team.names[Role.VIEWER]}' has role viewer" in lines[0]
    assert "POST /api/v1/deployments/cli-prod/promote needs deployer or higher" in lines[0]
    assert "Traceback" not in refused.stderr


def test_model_and_dataset_cards_are_built_by_the_server(team: Team, tmp_path: Path) -> None:
    card = _ok(_cli(team, Role.VIEWER, "models", "card", f"{team.model}/2"))
    assert card.startswith(f"# Model card: {team.model}/2")
    assert team.run_id in card and "cli-train" in card
    target = tmp_path / "card.json"
    _ok(_in_process(team, Role.VIEWER, "models", "card", f"{team.model}/1", "-o", str(target)))
    assert json.loads(target.read_text())["model"]["ref"] == f"{team.model}/1"
    dataset = _ok(_in_process(team, Role.VIEWER, "datasets", "card", "cli-train"))
    assert dataset.startswith("# Dataset card: cli-train@") and "60" in dataset
    missing = _in_process(team, Role.VIEWER, "datasets", "card", "no-such-data")
    assert missing.returncode == 3 and "no-such-data" in missing.stderr


def test_tokens_are_made_listed_and_revoked_on_the_server_by_an_admin(team: Team) -> None:
    made = _cli(team, Role.ADMIN, "tokens", "create", "cli-made", "--role", "viewer")
    secret = _ok(made).strip().splitlines()[-1]
    assert secret.startswith("mp_") and "Created token 'cli-made' (role viewer" in made.stdout
    # the new token authenticates against the server at once
    runs = _in_process(team, Role.VIEWER, "runs", "list", "-e", "cli-exp", "--json", token=secret)
    assert [r["run_id"] for r in json.loads(_ok(runs))] == [team.run_id]
    listed = json.loads(_ok(_in_process(team, Role.ADMIN, "tokens", "list", "--json")))
    made_row = next(t for t in listed if t["name"] == "cli-made")
    assert made_row["created_by"] == f"token:{team.names[Role.ADMIN]}"
    assert made_row["role"] == "viewer" and made_row["revoked_ms"] is None
    editor = Role.EDITOR
    refusals = [
        _cli(team, editor, "tokens", "list"),
        _in_process(team, editor, "tokens", "create", "sneaky", "--role", "admin"),
        _in_process(team, editor, "tokens", "revoke", "cli-made"),
    ]
    for refused in refusals:
        assert refused.returncode == Forbidden.exit_code == 5, refused.stderr
        assert f"Token '{team.names[editor]}' has role editor" in refused.stderr
        assert "needs admin or higher" in refused.stderr and "Traceback" not in refused.stderr
    revoked = _ok(_in_process(team, Role.ADMIN, "tokens", "revoke", "cli-made"))
    assert "Revoked token 'cli-made' (viewer)" in revoked
    after = _in_process(team, Role.VIEWER, "runs", "list", token=secret)
    assert after.returncode == 5 and "API token 'cli-made' was revoked" in after.stderr
    listed = json.loads(_ok(_in_process(team, Role.ADMIN, "tokens", "list", "--json")))
    assert "sneaky" not in {t["name"] for t in listed}  # the editor's attempt made nothing


def _canary(team: Team, name: str) -> None:
    """A deployment of version 1 with version 2 as a canary under a two-step policy."""
    _ok(_in_process(team, Role.DEPLOYER, "deploy", "create", name, "-m", f"{team.model}/1"))
    steps = ("--steps", "50,100", "--min-requests", "30", "--min-seconds", "0")
    _ok(_in_process(team, Role.DEPLOYER, "deploy", "canary", name, "-m", f"{team.model}/2", *steps))


def _log_traffic(team: Team, deployment: str, requests: int, canary_errors: int) -> list[str]:
    """``requests`` per variant as a data plane logs them into the CLI's home; returns the ids."""
    stamp, rows = now_ms(), []
    for variant, version, errors in (("stable", 1, 0), ("canary", 2, canary_errors)):
        for i in range(requests):
            rows.append(
                {
                    "model": team.model,
                    "request_id": f"{deployment}-{uuid.uuid4().hex[:12]}",
                    "row": 0,
                    "timestamp_ms": stamp,
                    "version": version,
                    "deployment": deployment,
                    "variant": variant,
                    "latency_ms": 3.0,
                    "error": "ValueError: bad input" if i < errors else None,
                    "in.a": float(i % 7),
                    "in.b": float(i % 3),
                    "out.prediction": i % 2,
                    "out.proba.1": 0.6,
                }
            )
    log = PredictionLog(log_folder(team.home), durability="sync")
    log.start()
    try:
        for batch in LogBatch.from_rows(rows):
            log.append(batch)
    finally:
        log.close()
    return [str(r["request_id"]) for r in rows]


def _status(team: Team, name: str) -> list[tuple[str, int, int]]:
    status = json.loads(_ok(_in_process(team, Role.VIEWER, "deploy", "status", name, "--json")))
    return [(v["role"], v["version"], v["weight"]) for v in status["config"]["variants"]]


def test_deploy_watch_rolls_back_a_failing_canary_on_the_server(team: Team) -> None:
    name = "cli-roll"
    _canary(team, name)
    _log_traffic(team, name, requests=100, canary_errors=40)
    watched = _cli(team, Role.DEPLOYER, "deploy", "watch", name, "--interval", "0")
    assert "rollback: error rate 40.0% over 100 requests" in _ok(watched)
    assert _status(team, name) == [("stable", 1, 100)]  # read back from the server
    history = json.loads(_ok(_in_process(team, Role.VIEWER, "deploy", "history", name, "--json")))
    assert (history[0]["action"], history[0]["actor"]) == (
        "auto_rollback",
        f"token:{team.names[Role.DEPLOYER]}",
    )
    assert history[0]["reason"].startswith("guard failed: error rate 40.0%")
    subject = ("--subject", f"deployment:{name}", "--json")
    audit = _ok(_in_process(team, Role.ADMIN, "audit", "log", *subject))
    alert = [e for e in map(json.loads, audit.splitlines()) if e["kind"] == "alert.rollback"]
    assert len(alert) == 1 and alert[0]["actor"] == f"token:{team.names[Role.DEPLOYER]}"
    assert alert[0]["payload"]["severity"] == "critical"
    viewer = _in_process(team, Role.VIEWER, "deploy", "watch", name, "--interval", "0")
    assert "hold: no canary under a rollout policy" in _ok(viewer)  # nothing left to change


def test_deploy_watch_advances_then_promotes_a_healthy_canary_on_the_server(team: Team) -> None:
    name = "cli-walk"
    _canary(team, name)
    _log_traffic(team, name, requests=40, canary_errors=0)
    viewer = _in_process(team, Role.VIEWER, "deploy", "watch", name, "--max-ticks", "1")
    assert viewer.returncode == 5 and "POST /api/v1/deployments/cli-walk/advance" in viewer.stderr
    first = _in_process(team, Role.DEPLOYER, "deploy", "watch", name, "--max-ticks", "1")
    assert "advance: step 1 (50%) passed with 40 requests; moving to 100%" in _ok(first)
    assert _status(team, name) == [("stable", 1, 0), ("canary", 2, 100)]
    _log_traffic(team, name, requests=40, canary_errors=0)  # the second step's evidence
    second = _cli(team, Role.DEPLOYER, "deploy", "watch", name, "--interval", "0")
    assert "promote: all 2 steps passed their guards" in _ok(second)
    assert _status(team, name) == [("stable", 2, 100)]
    history = json.loads(_ok(_in_process(team, Role.VIEWER, "deploy", "history", name, "--json")))
    assert [h["action"] for h in history] == ["promote", "advance", "canary", "create"]
    assert {h["actor"] for h in history} == {f"token:{team.names[Role.DEPLOYER]}"}


def test_labels_report_and_the_local_log_with_a_server_configured(
    team: Team, tmp_path: Path
) -> None:
    name = "cli-ab"
    _canary(team, name)
    ids = _log_traffic(team, name, requests=50, canary_errors=5)
    mp.init(team.home, server=team.server.url, token=team.tokens[Role.EDITOR])
    try:
        assert mp.log_labels(name, ids, [i % 2 for i in range(len(ids))]) == 100
        with pytest.raises(NotFound, match="No deployment named 'no-such-dep'. Deployments: "):
            mp.log_labels("no-such-dep", ids[:1], [1])  # checked by the server
        rows = mp.read_predictions(deployment=name)
        assert len(rows) == 100 and set(rows["variant"]) == {"stable", "canary"}
    finally:
        mp.init(tmp_path / "local-home")
        mp.workspace().close()
    report = json.loads(_ok(_in_process(team, Role.VIEWER, "deploy", "report", name, "--json")))
    by_variant = {v["variant"]: v for v in report["variants"]}
    assert {k: v["requests"] for k, v in by_variant.items()} == {"stable": 50, "canary": 50}
    assert by_variant["canary"]["error_rate"] == pytest.approx(0.1)
    assert by_variant["stable"]["outcome_n"] == 50 and by_variant["canary"]["quality_n"] > 0
    table = _ok(_in_process(team, Role.VIEWER, "deploy", "report", name))
    assert f"{team.model}/2" in table
    sql = f"SELECT count(*) AS n FROM predictions WHERE deployment = '{name}'"
    assert "100" in _ok(_in_process(team, Role.VIEWER, "logs", "query", sql))
    purge = ("logs", "purge", "--before", "2999-01-01", "--model", team.model, "--dry-run")
    assert "Would delete" in _ok(_in_process(team, Role.VIEWER, *purge))
    unknown = _in_process(team, Role.VIEWER, "deploy", "report", "no-such-dep")
    assert unknown.returncode == 3 and "No deployment named 'no-such-dep'" in unknown.stderr


def test_score_loads_the_model_from_the_server(team: Team, tmp_path: Path) -> None:
    data = pd.DataFrame(np.random.default_rng(3).normal(size=(25, 2)), columns=["a", "b"])
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    data.to_csv(source, index=False)
    ref = f"{team.model}/2"
    scored = _cli(team, Role.VIEWER, "score", ref, str(source), "-o", str(target), "--workers", "1")
    assert f"Scored 25 rows with {ref}" in _ok(scored)
    remote = Workspace(
        Settings(home=tmp_path / "sdk", server_uri=team.server.url, token=team.tokens[Role.VIEWER])
    )
    try:
        expected = remote.load_model(ref).predict_proba(data)[:, 1]
    finally:
        remote.close()
    out = pd.read_csv(target)
    np.testing.assert_allclose(out["proba_1"].to_numpy(), expected, rtol=1e-9)
    assert out["a"].tolist() == pytest.approx(data["a"].tolist())


def test_alerts_raised_through_the_sdk_are_on_the_server(team: Team) -> None:
    alerts = json.loads(_ok(_cli(team, Role.VIEWER, "alerts", "list", "-s", "cli-prod", "--json")))
    assert [(a["alert"]["rule"], a["alert"]["state"]) for a in alerts] == [("errors", "firing")]
    assert alerts[0]["actor"] == f"token:{team.names[Role.EDITOR]}"


def test_audit_log_lists_the_servers_changes_and_needs_admin(team: Team) -> None:
    exported = _ok(_cli(team, Role.ADMIN, "audit", "log", "--subject", "deployment:", "--json"))
    entries = [json.loads(line) for line in exported.splitlines()]
    assert len(entries) >= 6 and all(e["authenticated"] for e in entries)
    assert {e["actor"] for e in entries} == {f"token:{team.names[Role.DEPLOYER]}"}
    table = _ok(_in_process(team, Role.ADMIN, "audit", "log", "--limit", "3"))
    assert "Audit log" in table
    refused = _in_process(team, Role.DEPLOYER, "audit", "log")
    assert refused.returncode == 5 and "needs admin or higher" in refused.stderr


def test_nothing_was_written_to_the_clis_local_home(team: Team) -> None:
    assert not (team.home / "modelpilot.db").exists()


def test_audit_verify_exits_0_then_10_after_an_edit_in_the_servers_database(team: Team) -> None:
    intact = _cli(team, Role.ADMIN, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "Audit chain intact" in intact.stdout
    with sqlite3.connect(team.server.store_uri.split(":///", 1)[1]) as db:
        db.execute("UPDATE events SET actor = 'someone-else' WHERE id = 2")
    broken = _cli(team, Role.ADMIN, "audit", "verify")
    assert broken.returncode == AuditChainBroken.exit_code == 10
    assert "Audit chain broken at entry 2: edited" in broken.stderr
