"""`modelpilot score`: chunked batch scoring of Parquet and CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import frame
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


def test_a_bad_value_names_its_row_in_the_file_and_leaves_no_output(
    cli_home: Path, tmp_path: Path
) -> None:
    data = frame(1_000, seed=1).astype({"income": object})
    data.loc[777, "income"] = "oops"
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)
    target = tmp_path / "out.parquet"
    from modelpilot.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["score", "churn@champion", str(source), "-o", str(target), "--chunk-rows", "100"])
    assert info.value.code == 2
    assert not target.exists() and not list(tmp_path.glob(".out*"))
