"""The installed ``modelpilot`` executable against a real ``modelpilot server`` process.

With ``MODELPILOT_SERVER_URI`` and ``MODELPILOT_TOKEN`` set, ``runs``, ``models``,
``datasets``, ``deploy``, ``alerts`` and ``audit`` read and change the server's store, as the
token's identity, and nothing is written to the local home; a token whose role is too low gets
one clear line and a non-zero exit code; ``audit verify`` exits 0 on the server's intact chain
and 10 once a row is edited in the server's database.
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

from modelpilot.alerting import AlertManager, AlertRule, ServiceSink
from modelpilot.cli.main import main
from modelpilot.config import Settings
from modelpilot.errors import AuditChainBroken, Forbidden, InvalidInput
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


def _cli(team: Team, role: Role, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(team.home),
        "MODELPILOT_SERVER_URI": team.server.url,
        "MODELPILOT_TOKEN": team.tokens[role],
        "COLUMNS": "250",
    }
    return subprocess.run([executable, *args], env=env, capture_output=True, text=True, timeout=120)


def _in_process(team: Team, role: Role, *args: str) -> subprocess.CompletedProcess[str]:
    """The same command through ``modelpilot.cli.main.main`` in this process (a subprocess
    costs seconds of imports; the executable itself is exercised by the calls above)."""
    env = {
        "MODELPILOT_HOME": str(team.home),
        "MODELPILOT_SERVER_URI": team.server.url,
        "MODELPILOT_TOKEN": team.tokens[role],
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


def test_watch_and_report_say_they_need_the_local_prediction_log(team: Team) -> None:
    for command in ("watch", "report"):
        refused = _in_process(team, Role.ADMIN, "deploy", command, "cli-prod")
        assert refused.returncode == InvalidInput.exit_code, refused.stderr
        assert f"modelpilot deploy {command} reads the prediction log" in refused.stderr


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
