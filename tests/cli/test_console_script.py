"""The installed ``modelpilot`` executable (``[project.scripts]``), as a shell or CI job runs it.

The exit codes are the documented ones: 0 on success; the error tree's codes from
``errors.py`` (2 bad input, 3 not found, 4 conflict, 7 corrupt artifact); 8 when
``data validate`` finds failures; 9 when ``gate`` fails a check (docs/evaluation.md).
A missing executable fails these tests: the package is not installed as users install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot import __version__
from modelpilot.config import Settings
from modelpilot.workspace import Workspace


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset ``customers`` and model ``churn`` (v1, v2). SQLite only: each command here is
    a fresh process (seconds each on a busy machine), and test_cli_commands.py already runs
    every command on both backends; this module checks the script and its exit codes."""
    home = tmp_path_factory.mktemp("script") / "home"
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(400, 2)), columns=["a", "b"])
    data = x.assign(y=(x["a"] + rng.normal(scale=0.8, size=400) > 0).astype(int))
    ws = Workspace(Settings(home=home))
    ws.log_dataset(data, "customers")
    for _ in range(2):
        ws.log_model(LogisticRegression().fit(x, data["y"]), "churn", input_example=x.head())
    ws.close()
    return home


def _run(exe: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line an error prints (no traceback)."""
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_version_exits_0(exe: str, home: Path) -> None:
    result = _run(exe, home, "version")
    assert result.returncode == 0 and result.stdout == f"modelpilot {__version__}\n"


def test_bad_input_exits_2(exe: str, home: Path) -> None:
    result = _run(exe, home, "deploy", "canary", "web", "--model", "churn/2")
    assert result.returncode == 2
    assert "Give --weight (percent of traffic) or --steps" in _error_line(result)


def test_a_usage_error_exits_2(exe: str, home: Path) -> None:
    result = _run(exe, home, "models", "nope")
    assert result.returncode == 2 and "No such command 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_not_found_exits_3(exe: str, home: Path) -> None:
    result = _run(exe, home, "models", "show", "nope/1")
    assert result.returncode == 3
    assert "No registered model named 'nope'" in _error_line(result)


def test_conflict_exits_4(exe: str, home: Path) -> None:
    assert _run(exe, home, "deploy", "create", "conflict", "--model", "churn/1").returncode == 0
    again = _run(exe, home, "deploy", "create", "conflict", "--model", "churn/1")
    assert again.returncode == 4
    assert "conflict" in _error_line(again)


def test_debug_shows_the_traceback(exe: str, home: Path) -> None:
    result = _run(exe, home, "--debug", "models", "show", "nope/1")
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "NotFound: No registered model named 'nope'" in result.stderr


def test_data_validate_exits_0_then_8_on_failures(exe: str, home: Path, tmp_path: Path) -> None:
    reference = pd.read_parquet(_dataset_file(home))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    reference.head(50).to_csv(good, index=False)
    reference.head(50).assign(a="text").to_csv(bad, index=False)
    assert _run(exe, home, "data", "validate", "customers", str(good)).returncode == 0
    failed = _run(exe, home, "data", "validate", "customers", str(bad))
    assert failed.returncode == 8, failed.stdout + failed.stderr
    assert "a" in failed.stdout


def test_gate_exits_9_when_a_check_fails(exe: str, home: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("metrics:\n  roc_auc: {min: 0.999}\n")
    args = ["--data", "customers", "--target", "y"]
    failed = _run(exe, home, "gate", "churn/2", "--policy", str(strict), *args)
    assert failed.returncode == 9 and "FAILED" in failed.stdout and "roc_auc" in failed.stdout


def test_a_tampered_artifact_exits_7(exe: str, home: Path, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    blobs = sorted(p for p in (copy / "artifacts").rglob("*") if p.is_file())
    for blob in blobs:
        blob.write_bytes(blob.read_bytes() + b"tampered")
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"a": [0.1], "b": [0.2]}).to_csv(source, index=False)
    result = _run(exe, copy, "score", "churn/1", str(source), "-o", str(output))
    assert result.returncode == 7, result.stderr
    assert not output.exists()


def test_score_of_a_missing_file_exits_2_before_any_progress_bar(
    exe: str, home: Path, tmp_path: Path
) -> None:
    missing, output = tmp_path / "nowhere.csv", tmp_path / "out.csv"
    result = _run(exe, home, "score", "churn/1", str(missing), "-o", str(output))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "No input file" in result.stderr and str(missing) in result.stderr
    assert "scoring" not in result.stdout  # no empty progress bar drawn first
    assert not output.exists()


def _dataset_file(home: Path) -> Path:
    """The Parquet file behind ``customers`` (read back by the SDK to build test inputs)."""
    ws = Workspace(Settings(home=home))
    try:
        frame = ws.load_dataset("customers")
    finally:
        ws.close()
    path = home.parent / "customers.parquet"
    frame.to_parquet(path)
    return path
