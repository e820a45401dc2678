"""`modelpilot logs query` reads the prediction log and nothing else (the real executable)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from modelpilot.predictions import LogBatch, write_segments


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose prediction log holds three rows of model 'churn'."""
    home = tmp_path / "home"
    batch = LogBatch(
        "churn",
        3,
        {
            "request_id": ["a", "b", "c"],
            "timestamp_ms": np.array([1, 2, 3], dtype=np.int64),
            "in.age": np.array([30, 40, 50], dtype=np.int64),
        },
    )
    write_segments(home / "predictions", [batch])
    return home


def _logs_query(home: Path, sql: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [executable, "logs", "query", sql],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_logs_query_answers_a_select_over_predictions(home: Path) -> None:
    result = _logs_query(home, 'SELECT count(*) AS n, sum("in.age") AS ages FROM predictions')
    assert result.returncode == 0, result.stderr
    assert "120" in result.stdout


def test_logs_query_cannot_read_other_files(home: Path) -> None:
    result = _logs_query(home, "SELECT * FROM read_csv('/etc/passwd')")
    assert result.returncode == 2
    assert "root:" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "only reads the prediction log" in lines[0]


def test_logs_query_refuses_copy_to_a_file(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "leak.csv"
    result = _logs_query(home, f"COPY (SELECT * FROM predictions) TO '{target}'")
    assert result.returncode == 2
    assert not target.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "only SELECT or WITH" in lines[0]


def test_logs_query_refuses_settings_changes(home: Path) -> None:
    result = _logs_query(home, "SET enable_external_access = true; SELECT 1")
    assert result.returncode == 2
    assert "only SELECT or WITH" in result.stderr.strip().splitlines()[0]
