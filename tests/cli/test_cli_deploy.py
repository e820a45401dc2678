"""``modelpilot deploy`` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelpilot.cli.main import app
from modelpilot.config import Settings
from modelpilot.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 2)), columns=["a", "b"])
    for _ in range(2):
        ws.log_model(LogisticRegression().fit(x, x["a"] > 0), "churn", input_example=x.head())
    ws.set_alias("churn", "champion", 1)
    ws.close()
    monkeypatch.setenv("MODELPILOT_HOME", str(home))
    return home


def _ok(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_canary_promote_and_history(home: Path) -> None:
    _ok("deploy", "create", "churn-prod", "--model", "churn@champion")
    out = _ok("deploy", "canary", "churn-prod", "--model", "churn/2", "--steps", "5,50,100")
    assert "5%" in out and "rollout" in out
    _ok("deploy", "promote", "churn-prod", "--reason", "looked good")
    status = json.loads(_ok("deploy", "status", "churn-prod", "--json"))
    assert status["revision"] == 3
    assert [(v["role"], v["version"]) for v in status["config"]["variants"]] == [("stable", 2)]
    history = json.loads(_ok("deploy", "history", "churn-prod", "--json"))
    assert [h["action"] for h in history] == ["promote", "canary", "create"]
    assert history[0]["reason"] == "looked good"


def test_bad_steps_and_weights_are_one_line_errors(home: Path) -> None:
    _ok("deploy", "create", "d", "--model", "churn/1")
    bad = CliRunner().invoke(
        app, ["deploy", "canary", "d", "--model", "churn/2", "--steps", "5,50,40"]
    )
    assert bad.exit_code != 0
    from modelpilot.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["deploy", "canary", "d", "--model", "churn/2", "--weight", "150"])
    assert info.value.code == 2
