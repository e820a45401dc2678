"""``modelpilot pipelines`` in-process, on SQLite and PostgreSQL (the ``store_env`` backend):
an inline run and its records, and every usage error with exit code 2. The installed
executable and the subprocess executor are covered by integration/pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_files import churn_frame, copy_pipelines

from modelpilot.cli.main import main
from modelpilot.config import Settings
from modelpilot.workspace import Workspace

ARGS = ["--param", "data=churn-data", "--param", "holdout=churn-holdout"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: str | None) -> Path:
    folder = copy_pipelines(tmp_path / "project")
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(folder)
    ws = Workspace(Settings())
    ws.log_dataset(churn_frame(80, 0), "churn-data")
    ws.log_dataset(churn_frame(40, 1), "churn-holdout")
    ws.close()
    return folder


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["pipelines", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_an_inline_run_is_recorded_and_shown(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, "run", "churn_pipeline.py:churn", *ARGS, "--executor", "inline")
    assert code == 0, err
    assert "(3 steps, 0 cached;" in out
    code, out, _ = _cli(capsys, "list", "--json")
    (record,) = json.loads(out)
    assert record["executor"] == "inline" and record["state"] == "SUCCEEDED"
    assert record["params"] == {
        "data": record["params"]["data"], "holdout": record["params"]["holdout"], "c": 1.0,
    }  # fmt: skip
    assert record["params"]["data"].startswith("dataset churn-data@")
    train = record["steps"][1]
    assert (train["name"], train["output"]["kind"], train["attempt"]) == ("train", "model", 1)
    code, out, _ = _cli(capsys, "show", record["id"])
    assert code == 0 and "model churn/1" in out and "succeeded" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "churn_pipeline.py:churn", "--param", "data=churn-data"],
         "Missing param 'holdout' for pipeline 'churn': give it with --param holdout=VALUE"),
        (["run", "churn_pipeline.py:churn", *ARGS, "--param", "c=high"],
         "Param 'c' of pipeline 'churn' expects a float; got 'high'."),
        (["run", "churn_pipeline.py:churn", *ARGS, "--param", "c"],
         "--param 'c': expected NAME=VALUE"),
        (["run", "churn_pipeline.py:churn", *ARGS, "--executor", "threads"],
         "Unknown executor 'threads': expected one of subprocess, inline, ray."),
        (["run", "missing.py:churn"], "no Python file at missing.py"),
        (["run", "churn_pipeline.py"], "expected FILE.py:NAME or MODULE:NAME"),
        (["run", "churn_pipeline.py:train"],
         "'train' is a Step, not a pipeline (pipelines in it: churn)"),
        (["run", "no_such_module:churn"], "cannot import module 'no_such_module'"),
        (["run", "churn_pipeline.py:churn", "--param", "data=nope", "--param", "holdout=x"],
         "No dataset"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_and_say_what_is_accepted(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = _cli(capsys, *args)
    assert message in err, err
    assert code == (3 if message == "No dataset" else 2)
