"""``modelpilot pipelines run|list|show`` through the installed executable, as a shell or a
scheduler runs it: output, records and exit codes (0 ok, 2 bad input, 3 not found, 11 a
step failed). SQLite only: the SDK tests run the same engine on both backends."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from pipeline_files import churn_frame, copy_pipelines

from modelpilot.config import Settings
from modelpilot.workspace import Workspace

ARGS = ["--param", "data=churn-data", "--param", "holdout=churn-holdout"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the pipeline files and a home holding the data they read."""
    folder = copy_pipelines(tmp_path_factory.mktemp("project"))
    ws = Workspace(Settings(home=folder / "home"))
    ws.log_dataset(churn_frame(100, 0), "churn-data")
    ws.log_dataset(churn_frame(50, 1), "churn-holdout")
    ws.close()
    return folder


def _run(exe: str, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(project / "home"),
        "COLUMNS": "200",
    }
    env.pop("MODELPILOT_STORE_URI", None)
    return subprocess.run(
        [exe, "pipelines", *args],
        capture_output=True, text=True, env=env, cwd=project, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(exe: str, project: Path) -> list[subprocess.CompletedProcess[str]]:
    """The pipeline run twice: every step the first time, none the second."""
    return [_run(exe, project, "run", "churn_pipeline.py:churn", *ARGS) for _ in range(2)]


def test_run_prints_each_step_and_the_second_run_is_all_cached(
    runs: list[subprocess.CompletedProcess[str]],
) -> None:
    first, second = runs
    assert first.returncode == 0, first.stderr
    assert "Pipeline churn (churn_pipeline.py:churn)" in first.stdout
    for step in ("load", "train", "evaluate"):
        assert f"{step}" in first.stdout
    assert "succeeded" in first.stdout and "(3 steps, 0 cached;" in first.stdout
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("cached  output reused from step run") == 3
    assert "(3 steps, 3 cached;" in second.stdout


def test_list_and_show_read_the_records(
    exe: str, project: Path, runs: list[subprocess.CompletedProcess[str]]
) -> None:
    listed = _run(exe, project, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert [r["state"] for r in records] == ["SUCCEEDED", "SUCCEEDED"]
    newest, oldest = records
    assert [s["cached"] for s in newest["steps"]] == [True, True, True]
    assert [s["state"] for s in oldest["steps"]] == ["SUCCEEDED"] * 3
    table = _run(exe, project, "list")
    assert table.returncode == 0 and newest["id"][:8] in table.stdout

    shown = _run(exe, project, "show", newest["id"][:8])
    assert shown.returncode == 0, shown.stderr
    assert f"Pipeline run {newest['id']}" in shown.stdout
    assert "model churn/1 (cached from" in shown.stdout
    assert shown.stdout.count("cached") >= 3


def test_an_unknown_param_exits_2_with_one_clear_line(exe: str, project: Path) -> None:
    result = _run(exe, project, "run", "churn_pipeline.py:churn", *ARGS, "--param", "windw=3")
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "Error: Unknown param 'windw' for pipeline 'churn'; it takes: data, holdout, c=1.0.\n"
    )


def test_a_failed_step_exits_11_naming_the_step_error_and_log(exe: str, project: Path) -> None:
    result = _run(exe, project, "run", "faulty_pipeline.py:failing")
    assert result.returncode == 11, result.stderr
    assert "failed at step 'explode' (attempt 1/1): ZeroDivisionError" in result.stderr
    assert "about to divide 2 by zero" in result.stderr
    run_id = result.stderr.split("modelpilot pipelines show ")[1][:8]
    shown = _run(exe, project, "show", run_id)
    assert shown.returncode == 0
    assert "skipped" in shown.stdout and "Log tail of explode" in shown.stdout


def test_show_of_an_unknown_run_exits_3(exe: str, project: Path) -> None:
    result = _run(exe, project, "show", "nope")
    assert result.returncode == 3
    assert "No pipeline run with id 'nope'; `modelpilot pipelines list` shows them." in (
        result.stderr
    )
