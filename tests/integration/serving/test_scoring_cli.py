"""`modelpilot score`: chunked batch scoring of Parquet and CSV files."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import HERE, frame
from modelpilot.cli.main import app
from modelpilot.config import Settings
from modelpilot.tables import read_frame, table_kind
from modelpilot.workspace import Workspace


@pytest.fixture
def cli_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELPILOT_HOME", str(home))
    return home


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".TSV", ".csv.gz", ".TSV.GZ"])
def test_scores_every_row_in_order_matching_the_sdk(
    cli_home: Path, tmp_path: Path, suffix: str
) -> None:
    data = frame(2_500, seed=9)
    source = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        data.to_parquet(source)
    else:  # (pandas compresses a .gz named so)
        data.to_csv(source, index=False, sep="\t" if "tsv" in suffix.lower() else ",")
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
    kind = table_kind(target)
    assert kind is not None
    scored = read_frame(target, kind)
    ws = Workspace(Settings(home=cli_home))
    try:
        expected = ws.load_model("churn@champion").predict_proba(data)[:, 1]
    finally:
        ws.close()
    np.testing.assert_allclose(scored["proba_1"].to_numpy(), expected, rtol=1e-9)
    assert scored["age"].tolist() == data["age"].tolist()  # input order kept across chunks


@pytest.mark.parametrize(
    ("source_name", "target_name", "field"),
    [("in.xlsx", "out.parquet", "input"), ("in.csv", "out.json", "output")],
)
def test_a_file_of_another_kind_is_refused_naming_the_kinds_accepted(
    cli_home: Path, tmp_path: Path, exe: str, source_name: str, target_name: str, field: str
) -> None:
    source = tmp_path / source_name
    frame(10).to_csv(source, index=False)
    done = subprocess.run(
        [exe, "score", "churn@champion", str(source), "-o", str(tmp_path / target_name)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    named = source_name if field == "input" else target_name
    assert named in done.stderr and ".parquet, .csv, .tsv, .csv.gz or .tsv.gz" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / target_name).exists()


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


def _imputed_pipeline(rows: int) -> tuple[Any, pd.DataFrame]:
    """A pipeline trained the usual way, on a CSV read by pandas: its text column's empty
    and "n/a" cells arrive as NaN, which SimpleImputer fills before OneHotEncoder."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(11)
    plan = rng.choice(["basic", "pro", "n/a", ""], rows).astype(object)
    plan[: rows // 2] = ""  # the reader's whole first block holds no text in this column
    data = pd.DataFrame({"plan": plan, "x": rng.normal(size=rows)})
    text = pd.read_csv(io.StringIO(data.to_csv(index=False)))  # as the user trained on it
    target = ((text["plan"].fillna("pro") == "pro") ^ (text["x"] > 0)).astype(int)
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="pro"), OneHotEncoder(handle_unknown="ignore")
    )
    model = make_pipeline(
        make_column_transformer((categorical, ["plan"]), ("passthrough", ["x"])),
        LogisticRegression(),
    ).fit(text, target)
    return model, text


@pytest.mark.parametrize("executor", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_missing_text_in_a_csv_reaches_the_model_as_pandas_reads_it(
    cli_home: Path, tmp_path: Path, exe: str, executor: str
) -> None:
    """ "n/a" and empty cells of a text column are missing values, as pandas.read_csv (and so
    the training) had them, not categories the model never saw (a silently different score)."""
    model, text = _imputed_pipeline(3_000)
    source = tmp_path / "in.csv"
    text.to_csv(source, index=False)
    ws = Workspace(Settings(home=cli_home))
    try:
        example = text.iloc[[2_000, 2_001, 0]]  # one missing plan: the column is nullable
        ws.log_model(model, "imputed", input_example=example)
    finally:
        ws.close()
    target = tmp_path / "out.parquet"
    done = subprocess.run(
        [exe, "score", "imputed/1", str(source), "-o", str(target), "--chunk-rows", "100",
         "--executor", executor],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(target)
    expected = model.predict_proba(pd.read_csv(source))[:, 1]
    np.testing.assert_allclose(scored["proba_1"].to_numpy(), expected, rtol=1e-12)
    assert scored["plan"].isna().sum() == pd.read_csv(source)["plan"].isna().sum() > 1_500


def test_missing_text_where_the_version_accepts_none_is_refused_by_column_and_row(
    cli_home: Path, tmp_path: Path, exe: str
) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    _, text = _imputed_pipeline(400)
    clean = text.dropna()
    # no imputer, an encoder that fails on what it never saw: plan is not nullable
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), ("passthrough", ["x"])),
        LogisticRegression(),
    ).fit(clean, clean["x"] > 0)
    ws = Workspace(Settings(home=cli_home))
    try:
        ws.log_model(model, "strict", input_example=clean.head(5))
    finally:
        ws.close()
    source = tmp_path / "in.csv"
    text.iloc[200:].to_csv(source, index=False)
    first_missing = int(np.flatnonzero(text["plan"].iloc[200:].isna().to_numpy())[0])
    target = tmp_path / "out.parquet"
    done = subprocess.run(
        [exe, "score", "strict/1", str(source), "-o", str(target)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"Input column 'plan' (file row {first_missing}): expected a string" in done.stderr
    assert "the version's input example had none in this column" in done.stderr
    assert "got a missing value" in done.stderr and not target.exists()
