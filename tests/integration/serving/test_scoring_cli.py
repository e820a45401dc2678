"""`modelpilot score`: chunked batch scoring of Parquet and CSV files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import HERE, frame
from modelpilot.cli.main import app
from modelpilot.config import Settings
from modelpilot.workspace import Workspace


@pytest.fixture
def cli_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELPILOT_HOME", str(home))
    return home


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_scores_every_row_in_order_matching_the_sdk(
    cli_home: Path, tmp_path: Path, suffix: str
) -> None:
    data = frame(2_500, seed=9)
    source = tmp_path / f"in{suffix}"
    data.to_parquet(source) if suffix == ".parquet" else data.to_csv(source, index=False)
    target = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "churn@champion",
            str(source),
            "-o",
            str(target),
            "--chunk-rows",
            "300",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(target) if suffix == ".parquet" else pd.read_csv(target)
    ws = Workspace(Settings(home=cli_home))
    try:
        expected = ws.load_model("churn@champion").predict_proba(data)[:, 1]
    finally:
        ws.close()
    np.testing.assert_allclose(scored["proba_1"].to_numpy(), expected, rtol=1e-9)
    assert scored["age"].tolist() == data["age"].tolist()  # input order kept across chunks


@pytest.mark.parametrize(
    ("bad_row", "chunk_rows", "expected"),
    [
        # in the reader's first block: the whole column arrives as text
        (777, "100000", "Input column 'income' (file row 777): expected a number (float64); "
         "got 'oops'."),
        # past it: the reader typed the column from the first block and cannot convert
        (9_000, "100", "Input column 'income' (a file row after 8,"),
    ],
)  # fmt: skip
def test_a_bad_csv_value_names_its_column_and_row_and_leaves_no_output(
    cli_home: Path, tmp_path: Path, exe: str, bad_row: int, chunk_rows: str, expected: str
) -> None:
    data = frame(10_000, seed=1).astype({"income": object})
    data.loc[bad_row, "income"] = "oops"
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)
    target = tmp_path / "out.parquet"
    done = subprocess.run(
        [exe, "score", "churn@champion", str(source), "-o", str(target), "--chunk-rows",
         chunk_rows],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert "'oops'" in done.stderr
    assert not target.exists() and not list(tmp_path.glob(".out*"))


def test_a_csv_column_of_numbers_typed_as_text_is_scored_as_numbers(
    cli_home: Path, tmp_path: Path
) -> None:
    """A column whose every value is a number but which the reader typed as text (quoted
    numbers with spaces) scores as the numbers it holds."""
    data = frame(300, seed=3)
    source = tmp_path / "in.csv"
    text = data.assign(income=[f" {v!r} " for v in data["income"]])
    text.to_csv(source, index=False)
    ws = Workspace(Settings(home=cli_home))
    try:
        assert ws.score("churn@champion", source, tmp_path / "out.parquet") == 300
        expected = ws.load_model("churn@champion").predict_proba(data)[:, 1]
    finally:
        ws.close()
    scored = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_allclose(scored["proba_1"].to_numpy(), expected, rtol=1e-12)


def _score_file(exe: str, ref: str, data: pd.DataFrame, source: Path) -> tuple[int, str, Path]:
    target = source.with_name("out.parquet")
    if source.suffix == ".csv":
        data.to_csv(source, index=False)
    else:
        data.to_parquet(source)
    done = subprocess.run(
        [exe, "score", ref, str(source), "-o", str(target), "--chunk-rows", "100"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(HERE)},  # flaky/1's code
    )  # fmt: skip
    return done.returncode, done.stderr, target


def test_a_missing_value_in_an_integer_column_is_called_missing(
    cli_home: Path, tmp_path: Path, exe: str
) -> None:
    data = frame(300, seed=4).astype({"age": object})
    data.loc[120, "age"] = "n/a"  # the CSV reader's null: the column stays integer otherwise
    code, stderr, target = _score_file(exe, "churn@champion", data, tmp_path / "in.csv")
    assert code == 2, stderr
    assert "Input column 'age' (file row 120): expected a finite int64" in stderr
    assert "got a missing value." in stderr and "np.float64" not in stderr
    assert not target.exists()


def test_a_model_that_raises_fails_the_job_naming_the_rows_without_a_traceback(
    cli_home: Path, tmp_path: Path, exe: str
) -> None:
    data = frame(300, seed=5)
    data.loc[250, "age"] = -3
    code, stderr, target = _score_file(exe, "flaky/1", data, tmp_path / "in.parquet")
    assert code == 1, stderr
    assert "The model raised on file rows 200-299: RuntimeError: age must not be negative" in (
        " ".join(stderr.split())
    )
    assert "Traceback" not in stderr and not target.exists()
