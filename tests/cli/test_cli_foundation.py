"""The CLI in-process (CliRunner) and once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelpilot.cli.main import app, main
from modelpilot.config import Settings
from modelpilot.store.migrate import HEAD_REVISION
from modelpilot.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: str | None) -> Path:
    """A home with one run, one dataset and two registered versions; the CLI points at it."""
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    y = (x["a"] > 0).astype(int)
    with ws.start_run("churn", name="cli-run"):
        ws.log_params({"C": 1.0})
        ws.log_metric("auc", 0.93)
        ds = ws.log_dataset(x.assign(y=y), "churn-train")
        for _ in range(2):
            ws.log_model(
                LogisticRegression().fit(x, y), "churn", input_example=x.head(), datasets=[ds]
            )
    ws.close()
    monkeypatch.setenv("MODELPILOT_HOME", str(home))
    return home


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_alias_set_then_show_lists_the_alias(home: Path) -> None:
    code, out, _ = _run("models", "alias", "set", "churn", "champion", "2")
    assert code == 0 and "churn@champion → version 2" in out
    code, out, _ = _run("models", "show", "churn@champion", "--json")
    assert code == 0 and json.loads(out)["model"]["aliases"] == ["champion"]
    code, out, _ = _run("models", "list")
    assert "champion→2" in out


def test_runs_list_and_show(home: Path) -> None:
    code, out, _ = _run("runs", "list", "--experiment", "churn", "--json")
    runs = json.loads(out)
    assert code == 0 and runs[0]["name"] == "cli-run" and runs[0]["metrics.auc"] == 0.93
    code, out, _ = _run("runs", "show", runs[0]["run_id"])
    assert code == 0 and "cli-run" in out and "auc" in out


def test_datasets_show_prints_the_profile(home: Path) -> None:
    code, out, _ = _run("datasets", "show", "churn-train", "--json")
    assert code == 0 and json.loads(out)["rows"] == 100


def test_errors_are_one_line_with_the_error_exit_code(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "alias", "set", "churn", "champion", "9"])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert "Error: Cannot point alias 'champion' at churn/9" in err
    assert "Traceback" not in err


def test_cli_subprocess_version_and_db_upgrade(tmp_path: Path) -> None:
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "h")}
    exe = [sys.executable, "-m", "modelpilot.cli.main"]
    version = subprocess.run([*exe, "version"], capture_output=True, text=True, env=env, check=True)
    assert version.stdout.startswith("modelpilot ")
    upgrade = subprocess.run(
        [*exe, "db", "upgrade"], capture_output=True, text=True, env=env, check=True
    )
    assert f"Schema at revision {HEAD_REVISION}" in upgrade.stdout
    missing = subprocess.run(
        [*exe, "models", "show", "nope/1"], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 3 and "No registered model named 'nope'" in missing.stderr
