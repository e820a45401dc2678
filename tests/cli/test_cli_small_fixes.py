"""Small CLI fixes, each checked in-process and through the installed ``modelpilot`` executable.

- ``runs show`` accepts the 8-character ids ``runs list`` prints (any unique prefix);
- ``score`` on a header-only CSV writes an empty output with the right columns, exit 0.
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
from typer.testing import CliRunner

from modelpilot.cli.main import app
from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """17 runs (so, over 16 hex digits, at least two ids share a first character) and a model."""
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 2)), columns=["a", "b"])
    for i in range(17):
        with ws.start_run("churn", name=f"run-{i}"):
            ws.log_params({"i": i})
            if i == 0:
                ws.log_model(LogisticRegression().fit(x, x["a"] > 0), "churn", input_example=x)
    ws.close()
    monkeypatch.setenv("MODELPILOT_HOME", str(home))
    return home


def _run_ids(home: Path) -> list[str]:
    ws = Workspace(Settings(home=home))
    try:
        return [str(r) for r in ws.search_runs("churn")["run_id"]]
    finally:
        ws.close()


def _modelpilot(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([executable, *args], env=env, capture_output=True, text=True)


def test_runs_show_accepts_the_short_id_runs_list_prints(home: Path) -> None:
    full = _run_ids(home)[0]
    listed = CliRunner().invoke(app, ["runs", "list"])
    assert full[:8] in listed.stdout
    shown = CliRunner().invoke(app, ["runs", "show", full[:8]])
    assert shown.exit_code == 0, shown.output
    assert f"Run {full}" in shown.stdout
    process = _modelpilot(home, "runs", "show", full[:8])
    assert process.returncode == 0, process.stderr
    assert f"Run {full}" in process.stdout


def test_an_ambiguous_run_prefix_is_an_error_listing_the_matches(home: Path) -> None:
    ids = _run_ids(home)
    prefix = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) >= 2)
    matches = [i for i in ids if i.startswith(prefix)]
    process = _modelpilot(home, "runs", "show", prefix)
    assert process.returncode == 2, process.stderr
    assert f"Run id prefix '{prefix}' matches {len(matches)} runs" in process.stderr
    assert all(m[:8] in process.stderr for m in matches)
    ws = Workspace(Settings(home=home))
    try:
        with pytest.raises(InvalidInput, match=rf"matches {len(matches)} runs: .*more characters"):
            ws.tracking.resolve_run_id(prefix)
    finally:
        ws.close()


def test_an_unknown_run_prefix_is_not_found_exit_3(home: Path) -> None:
    process = _modelpilot(home, "runs", "show", "zzzzzzzz")
    assert process.returncode == 3
    assert "No run with id 'zzzzzzzz'" in process.stderr and "Traceback" not in process.stderr


def test_score_on_a_header_only_csv_writes_an_empty_output_with_the_columns(
    home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("a,b\n")
    target = tmp_path / "scored.csv"
    result = CliRunner().invoke(app, ["score", "churn/1", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "Scored 0 rows" in result.stdout
    header = target.read_text().splitlines()
    assert header[0].replace('"', "") == "a,b,prediction,proba_False,proba_True"
    assert len(header) == 1
    parquet = tmp_path / "scored.parquet"
    process = _modelpilot(home, "score", "churn/1", str(source), "-o", str(parquet))
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    frame = pd.read_parquet(parquet)
    assert list(frame.columns) == ["a", "b", "prediction", "proba_False", "proba_True"]
    assert len(frame) == 0
