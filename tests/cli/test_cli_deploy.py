"""``modelpilot deploy`` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelpilot.cli.main import app, main
from modelpilot.config import Settings
from modelpilot.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: str | None) -> Path:
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


def test_bad_steps_and_weights_are_one_line_errors(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ok("deploy", "create", "d", "--model", "churn/1")
    for args, message in [
        (
            ["--steps", "5,50,40"],
            "steps must rise strictly from above 0 to exactly 100; got [5, 50, 40]",
        ),
        (["--weight", "150"], "must be a whole number from 0 to 100; got 150."),
    ]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(["deploy", "canary", "d", "--model", "churn/2", *args])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and err.count("\n") == 1, err
        assert message in err and "Traceback" not in err
