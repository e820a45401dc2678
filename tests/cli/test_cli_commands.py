"""Every CLI command a user types, with its output and exit code, on SQLite and PostgreSQL.

The home holds a run, a labelled dataset and two versions of ``churn``; the CLI finds it
through ``MODELPILOT_HOME`` (and ``MODELPILOT_STORE_URI`` on PostgreSQL, from ``store_env``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
import typer.main
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelpilot.cli.main import app, main
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.predictions import LogBatch, write_segments
from modelpilot.predictions.labels import log_labels
from modelpilot.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: str | None) -> Path:
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = (x["a"] + 0.5 * rng.normal(size=300) > 0).astype(int)
    with ws.start_run("churn", name="cli-run"):
        ds = ws.log_dataset(x.assign(y=y), "churn-train")
        for c in (1.0, 0.1):
            ws.log_model(
                LogisticRegression(C=c).fit(x, y), "churn", input_example=x.head(), datasets=[ds]
            )
    ws.set_alias("churn", "champion", 1)
    ws.close()
    monkeypatch.setenv("MODELPILOT_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables: no wrapped cells in assertions
    return home


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails(capsys: pytest.CaptureFixture[str], *args: str, code: int, match: str) -> None:
    """Through the entry point: one line on stderr with the message, and the error's code."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert re.search(match, err), err


def test_models_card_prints_markdown_or_writes_a_file(home: Path, tmp_path: Path) -> None:
    out = _run("models", "card", "churn@champion")
    assert "# Model card: churn/1" in out and "churn-train@" in out
    target = tmp_path / "card.json"
    out = _run("models", "card", "churn/2", "-o", str(target))
    assert f"Wrote the model card of churn/2 to {target}" in out.replace("\n", "")
    assert json.loads(target.read_text())["model"]["ref"] == "churn/2"


def test_models_alias_delete_removes_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "Removed alias 'champion' from churn." in _run(
        "models", "alias", "delete", "churn", "champion"
    )
    assert json.loads(_run("models", "show", "churn/1", "--json"))["model"]["aliases"] == []
    _fails(
        capsys,
        "models",
        "alias",
        "delete",
        "churn",
        "champion",
        code=3,
        match="No alias 'champion' on model 'churn'. Existing aliases: none",
    )


def test_datasets_list_and_card(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run("datasets", "list")
    assert "churn-train" in out and "300" in out
    assert json.loads(_run("datasets", "list", "--json"))[0]["rows"] == 300
    assert "- **Rows:** 300" in _run("datasets", "card", "churn-train")
    page = tmp_path / "ds.html"
    assert "Wrote the dataset card of churn-train@" in _run(
        "datasets", "card", "churn-train", "-o", str(page)
    )
    assert page.read_text().startswith("<!")
    _fails(capsys, "datasets", "card", "nope", code=3, match="No dataset named 'nope'")


def test_deploy_shadow_ab_rollback_list_and_tables(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run("deploy", "create", "web", "--model", "churn@champion")
    shadow = _run("deploy", "shadow", "web", "--model", "churn/2", "--reason", "mirror it")
    assert "mirror" in shadow and "churn/2" in shadow
    ab = _run("deploy", "ab", "web", "--model", "churn/2", "--split", "30", "--key", "user_id")
    assert "70%" in ab and "30%" in ab and "sticky by request field 'user_id'" in ab
    back = _run("deploy", "rollback", "web", "--reason", "too early")
    assert "revision 4" in back and "churn/2" not in back
    _run("deploy", "create", "batch", "--model", "churn/2")
    listed = _run("deploy", "list")
    assert "web (revision 4" in listed and "batch (revision 1" in listed
    status = _run("deploy", "status", "web")
    assert "web (revision 4" in status and "churn/1" in status and "100%" in status
    history = _run("deploy", "history", "web")
    for action, reason in [("rollback", "too early"), ("ab", ""), ("shadow", "mirror it")]:
        assert action in history and reason in history
    _fails(
        capsys, "deploy", "ab", "web", "--model", "churn/2", "--split", "150", "--key", "u",
        code=2, match="The A/B split must be a whole number from 0 to 100; got 150",
    )  # fmt: skip
    _fails(capsys, "deploy", "rollback", "nope", code=3, match="nope")


def test_deploy_report_table_shows_each_variant(home: Path) -> None:
    _run("deploy", "create", "shop", "--model", "churn/1")
    _run("deploy", "ab", "shop", "--model", "churn/2", "--split", "50", "--key", "user_id")
    rows = [
        {
            "request_id": f"r{i}", "row": 0, "timestamp_ms": 1_000 + i, "model": "churn",
            "version": 1 + i % 2, "deployment": "shop",
            "variant": "stable" if i % 2 == 0 else "challenger", "latency_ms": 2.0,
            "error": None, "in.a": 1.0, "out.prediction": 0,
        }
        for i in range(40)
    ]  # fmt: skip
    write_segments(home / "predictions", LogBatch.from_rows(rows))
    log_labels(home, "shop", [r["request_id"] for r in rows], [i % 3 == 0 for i in range(40)])
    out = _run("deploy", "report", "shop")
    assert "stable" in out and "challenger" in out and "50.0%" in out
    assert "churn/1" in out and "churn/2" in out


def test_deploy_watch_runs_the_controller_until_it_needs_more_evidence(home: Path) -> None:
    _run("deploy", "create", "web", "--model", "churn/1")
    _run(
        "deploy", "canary", "web", "--model", "churn/2", "--steps", "50,100",
        "--min-requests", "1", "--min-seconds", "0",
    )  # fmt: skip
    variants = json.loads(_run("deploy", "status", "web", "--json"))["config"]["variants"]
    canary = next(v["name"] for v in variants if v["role"] != "stable")
    row = {
        "request_id": "r1", "row": 0, "timestamp_ms": now_ms(), "model": "churn", "version": 2,
        "deployment": "web", "variant": canary, "latency_ms": 2.0, "error": None, "in.a": 1.0,
        "out.prediction": 0,
    }  # fmt: skip
    write_segments(home / "predictions", LogBatch.from_rows([row]))
    out = _run("deploy", "watch", "web", "--interval", "0", "--max-ticks", "2")
    assert "advance: step 1 (50%) passed with 1 requests; moving to 100%" in out
    assert "hold: step 2 (100%): 0/1 requests so far" in out
    status = json.loads(_run("deploy", "status", "web", "--json"))
    assert status["config"]["rollout_step"] == 1
    _run("deploy", "create", "plain", "--model", "churn/1")
    assert "hold: no canary under a rollout policy" in _run("deploy", "watch", "plain")


def test_evaluate_prints_metrics_with_intervals_and_writes_a_report(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "eval.html"
    out = _run(
        "evaluate", "churn/2", "--data", "churn-train", "--target", "y",
        "--baseline", "churn@champion", "-o", str(report),
    )  # fmt: skip
    assert "churn/2 on churn-train (300 rows, binary" in out
    assert "roc_auc" in out and "95% interval" in out and f"Wrote {report}" in out
    assert report.read_text().startswith("<!")
    _fails(
        capsys, "evaluate", "churn/2", "--data", "churn-train", "--target", "nope",
        code=2, match="Target column 'nope' is not in the evaluation data",
    )  # fmt: skip


# Every command and the test file that runs it (this file unless named); pinned to the app.
COVERED = {
    "version": "test_cli_foundation.py, test_console_script.py",
    "runs list": "test_cli_foundation.py, integration/server/test_cli_over_server.py",
    "runs show": "test_cli_foundation.py, integration/server/test_cli_over_server.py",
    "models list": "test_cli_foundation.py, integration/server/test_cli_over_server.py",
    "models show": "test_cli_foundation.py, integration/server/test_cli_over_server.py",
    "models card": "this file, integration/server/test_cli_over_server.py",
    "models alias set": "test_cli_foundation.py",
    "models alias delete": "",
    "datasets list": "integration/server/test_cli_over_server.py",
    "datasets show": "test_cli_foundation.py",
    "datasets card": "this file, integration/server/test_cli_over_server.py",
    "db upgrade": "test_cli_foundation.py",
    "deploy create": "integration/server/test_cli_over_server.py",
    "deploy canary": "test_cli_deploy.py, integration/server/test_cli_over_server.py",
    "deploy shadow": "",
    "deploy ab": "",
    "deploy promote": "test_cli_deploy.py, integration/server/test_cli_over_server.py",
    "deploy rollback": "integration/server/test_cli_over_server.py",
    "deploy status": "integration/server/test_cli_over_server.py",
    "deploy history": "integration/server/test_cli_over_server.py",
    "deploy watch": "this file, integration/server/test_cli_over_server.py",
    "deploy weight": "integration/server/test_cli_over_server.py",
    "deploy report": "this file, integration/server/test_cli_over_server.py",
    "deploy list": "integration/server/test_cli_over_server.py",
    "deploy policy set": "integration/loop/test_loop_policy_cli.py",
    "deploy policy show": "integration/loop/test_loop_policy_cli.py",
    "deploy policy history": "integration/loop/test_loop_policy_cli.py",
    "deploy policy validate": "integration/loop/test_loop_policy_cli.py",
    "serve": "integration/serving/conftest.py, integration/serving/test_serving_remote.py",
    "logs query": (
        "integration/serving/test_serving_http.py, integration/server/test_cli_over_server.py"
    ),
    "score": "integration/serving/test_scoring_cli.py, integration/server/test_cli_over_server.py",
    "monitor run": "integration/serving/test_monitoring_deployment.py",
    "monitor report": "integration/serving/test_monitoring_deployment.py",
    "monitor reports": "integration/server/test_assessment_over_server.py",
    "monitor estimate": "test_cli_estimate.py",
    "data validate": "unit/data/test_data_validation.py, test_console_script.py",
    "evaluate": "",
    "gate": "integration/evaluation/test_evaluate_registered.py, test_console_script.py",
    "optimize": "test_cli_optimize.py",
    "profile": "test_cli_profile.py",
    "audit verify": "test_cli_audit.py, integration/server/test_cli_over_server.py",
    "audit log": "test_cli_audit.py, integration/server/test_cli_over_server.py",
    "alerts list": "integration/server/test_cli_over_server.py",
    "logs domain": "integration/serving/test_serving_out_of_domain.py",
    "logs ship": "integration/predictions/test_log_bucket.py",
    "logs pull": "integration/predictions/test_log_bucket.py",
    "logs policy set": "integration/serving/test_serving_pii.py",
    "logs policy show": "integration/serving/test_serving_pii.py",
    "logs purge": (
        "integration/serving/test_serving_pii.py, integration/server/test_cli_over_server.py"
    ),
    "server": "integration/server/test_server_auth.py (tests/mp_server.py)",
    "tokens create": "test_cli_tokens.py, integration/server/test_cli_over_server.py",
    "tokens list": "test_cli_tokens.py, integration/server/test_cli_over_server.py",
    "tokens revoke": "test_cli_tokens.py, integration/server/test_cli_over_server.py",
    "pipelines run": "integration/pipelines/test_pipelines_cli.py",
    "pipelines list": "integration/pipelines/test_pipelines_cli.py",
    "pipelines show": "integration/pipelines/test_pipelines_cli.py",
    "pipelines tick": "integration/pipelines/test_triggers_cli.py",
    "pipelines trigger create": "integration/pipelines/test_triggers_cli.py",
    "pipelines trigger list": "integration/pipelines/test_triggers_cli.py",
    "pipelines trigger fire": "integration/pipelines/test_triggers_cli.py",
    "pipelines trigger history": "integration/pipelines/test_triggers_cli.py",
    "pipelines trigger delete": "integration/pipelines/test_triggers_cli.py",
    "agent": "integration/loop/test_agent.py, integration/loop/test_loop_cli.py",
    "loop history": "integration/loop/test_loop_cli.py",
    "loop show": "integration/loop/test_loop_cli.py",
    "approve": "integration/loop/test_loop_cli.py",
    "governance report": "integration/governance/test_governance_cli.py",
    "models risk edit": "integration/governance/test_governance_cli.py",
    "models risk show": "integration/governance/test_governance_cli.py",
    "models retire": "integration/governance/test_governance_cli.py",
    "gc": "integration/artifacts/test_artifact_gc.py",
    "package image": "test_cli_package.py, integration/images/test_image_build.py",
}


def _commands(group: Any, prefix: str = "") -> set[str]:
    """Command paths under a click group (typer's vendored click: groups have ``commands``)."""
    found: set[str] = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found |= _commands(command, f"{path} ")
        else:
            found.add(path)
    return found


def test_every_command_is_listed_with_its_test() -> None:
    assert _commands(typer.main.get_command(app)) == set(COVERED)
