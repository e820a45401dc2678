"""The risk gates and data-risk rules through the installed ``modelpilot`` executable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from modelpilot.config import Settings
from modelpilot.workspace import Workspace

SRC = Path(__file__).resolve().parents[3] / "src"
EXE = Path(sys.executable).parent / "modelpilot"


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return frame.assign(y=(frame["a"] + 0.8 * rng.normal(size=n) > 0).astype(int))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("risks")
    ws = Workspace(Settings(home=home))
    train, test = _rows(800, 0), _rows(800, 1)
    train_version = ws.log_dataset(train, "churn-train", label="y")
    ws.log_dataset(test, "churn-test", role="evaluation", leakage_against=train_version)
    features = train[["a", "b", "c"]]
    for depth in (None, 3):  # churn/1 overfit, churn/2 regularised
        tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(features, train["y"])
        ws.log_model(tree, "churn", input_example=features.head(), datasets=[train_version])
    ws.log_model(
        DecisionTreeClassifier(random_state=0).fit(features, train["y"]),
        "orphan",
        input_example=features.head(),
    )
    ws.close()
    (home / "gate.yaml").write_text("name: risks\nmembership: {max_auc: 0.6}\n")
    pd.concat([test, train.head(20)]).to_csv(home / "new.csv", index=False)
    (home / "rules.yaml").write_text("- {kind: no_leakage, against: churn-train}\n")
    return home


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPILOT_HOME": str(home), "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    return subprocess.run(
        [str(EXE), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_gate_fails_the_overfit_model_on_membership_auc_and_passes_the_regularised(
    home: Path,
) -> None:
    args = ("--policy", str(home / "gate.yaml"), "--data", "churn-test", "--target", "y")
    overfit = _cli(home, "gate", "churn/1", *args)
    assert overfit.returncode == 9, overfit.stderr
    assert "membership.auc" in overfit.stdout and "FAIL" in overfit.stdout
    regular = _cli(home, "gate", "churn/2", *args)
    assert regular.returncode == 0, regular.stdout + regular.stderr
    assert "PASSED" in regular.stdout


def test_gate_on_a_version_without_training_data_says_how_to_pass_it(home: Path) -> None:
    args = ("--policy", str(home / "gate.yaml"), "--data", "churn-test", "--target", "y")
    result = _cli(home, "gate", "orphan/1", *args)
    assert result.returncode == 2
    assert "no linked training dataset" in result.stderr and "--train-data" in result.stderr
    explicit = _cli(home, "gate", "orphan/1", *args, "--train-data", "churn-train")
    assert explicit.returncode == 9, explicit.stderr


def test_data_validate_fails_a_file_that_shares_rows_with_the_training_data(home: Path) -> None:
    result = _cli(
        home, "data", "validate", "churn-test", str(home / "new.csv"),
        "--rules", str(home / "rules.yaml"),
    )  # fmt: skip
    assert result.returncode == 8, result.stderr
    assert "no row also in churn-train" in result.stdout
    assert "20 (2.4%)" in result.stdout
