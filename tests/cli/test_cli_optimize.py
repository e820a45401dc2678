"""``modelpilot optimize`` through the installed executable: the table, registration and exit
codes (0 all candidates faithful, 2 bad input, 9 a candidate failed its fidelity check)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from modelpilot.config import Settings
from modelpilot.workspace import Workspace

# An end-to-end scenario: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn/1: logistic regression with its training data; odd/1: a FunctionTransformer;
    trees/1: a HistGradientBoosting classifier."""
    home = tmp_path_factory.mktemp("optimize") / "home"
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(400, 2)), columns=["a", "b"])
    data = x.assign(y=(x["a"] + rng.normal(scale=0.8, size=400) > 0).astype(int))
    ws = Workspace(Settings(home=home))
    train = ws.log_dataset(data, "customers")
    ws.log_model(LogisticRegression().fit(x, data["y"]), "churn", input_example=x.head(),
                 datasets=[train])  # fmt: skip
    odd = Pipeline(
        [
            ("pre", ColumnTransformer([("abs", FunctionTransformer(np.abs), ["a", "b"])])),
            ("model", LogisticRegression()),
        ]
    ).fit(x, data["y"])
    ws.log_model(odd, "odd", input_example=x.head(), datasets=[train],
                 trusted_types=["numpy.absolute"])  # fmt: skip
    trees = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, data["y"])
    ws.log_model(trees, "trees", input_example=x.head(), datasets=[train])
    ws.close()
    return home


def _home_with(home: Path, name: str, model: object, x: pd.DataFrame, y: pd.Series) -> Path:
    """A home of its own holding ``name``/1, logged with its training data."""
    ws = Workspace(Settings(home=home))
    data = ws.log_dataset(x.assign(y=y), name)
    ws.log_model(model, name, input_example=x.head(), datasets=[data])
    ws.close()
    return home


def _run(
    exe: str, home: Path, *args: str, path: str | None = None, columns: str | None = "250"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPILOT_HOME": str(home)}
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_optimize_prints_the_table_and_registers_the_candidate(exe: str, home: Path) -> None:
    result = _run(exe, home, "optimize", "churn/1", "--to", "onnx")
    assert result.returncode == 0, result.stderr
    assert "Candidates of churn/1" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "churn/2" in line]
    assert any("onnx" in line and "passed" in line for line in lines), result.stdout
    assert "Registered churn/2 (onnx): passed" in result.stdout
    shown = _run(exe, home, "models", "show", "churn/2")
    assert shown.returncode == 0 and "onnx" in shown.stdout


def test_piped_output_shows_the_tables_cells_whole(exe: str, tmp_path: Path) -> None:
    """Captured as a script or `| less` would (no terminal, no COLUMNS): Rich's 80 columns
    used to cut every cell of the 18-column table to "…". (Its own home: the module's
    versions are numbered by the tests above and below.)"""
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    y = (x["a"] > 0).astype(int)
    home = _home_with(tmp_path / "home", "piped", LogisticRegression().fit(x, y), x, y)
    result = _run(exe, home, "optimize", "piped/1", "--to", "onnx", columns=None)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout, result.stdout
    header = next(line for line in result.stdout.splitlines() if "version" in line)
    assert "target" in header and "status" in header and "Pareto" in header
    assert any("piped/1" in line and "source" in line for line in result.stdout.splitlines())


def test_a_narrow_terminal_gets_the_table_on_its_side_and_a_failed_forest_its_likely_cause(
    exe: str, tmp_path: Path
) -> None:
    """At 80 columns the 18-column table used to print every cell as a letter and "…"; it is
    now a row per measure and a column per model. The forest follows a scaler, so its
    failure names the scaler as the likely cause and the ways out."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(2)
    x = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = (x["a"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    forest = Pipeline([("scale", StandardScaler()), ("trees", RandomForestClassifier(20))])
    home = _home_with(tmp_path / "home", "narrow", forest.fit(x, y), x, y)
    result = _run(exe, home, "optimize", "narrow/1", "--max-abs-proba-diff", "0", columns="80")
    assert result.returncode == 9, result.stderr
    assert "…" not in result.stdout, result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    lines = result.stdout.splitlines()
    assert any("narrow/1" in line and "narrow/2" in line for line in lines), result.stdout
    for measure in ("status", "rows/s @64", "max |Δp|", "Pareto", "Δ 95% CI"):
        assert any(line.startswith(f"│ {measure} ") for line in lines), measure
    said = " ".join(result.stdout.split())
    assert "likely cause" in said and "'scale'" in said and "Trees need no scaling" in said


def test_a_candidate_failing_fidelity_exits_9_and_is_kept(exe: str, home: Path) -> None:
    # float32 moves a logistic regression's probabilities by ~1e-8: a zero bound fails it
    result = _run(exe, home, "optimize", "churn/1", "--max-abs-proba-diff", "0")
    assert result.returncode == 9, result.stderr
    assert "FAILED fidelity: max_abs_proba_diff = " in result.stdout
    assert "required at most 0 (kept, never aliased)" in " ".join(result.stdout.split())
    alias = _run(exe, home, "models", "alias", "set", "churn", "champion", "3")
    assert alias.returncode != 0 and "failed its fidelity check" in alias.stderr


def test_distilled_student_is_printed_registered_and_its_exit_code_follows_the_bounds(
    exe: str, home: Path
) -> None:
    # odd/1 cannot become ONNX (a FunctionTransformer); its student keeps that step as it is
    strict = _run(exe, home, "optimize", "odd/1", "--to", "distilled", "--student", "linear",
                  "--max-abs-proba-diff", "0")  # fmt: skip
    assert strict.returncode == 9, strict.stderr
    assert "linear student: LogisticRegression" in strict.stdout
    assert "(kept, never aliased)" in " ".join(strict.stdout.split())
    assert "FAILED fidelity: " in strict.stdout
    loose = _run(exe, home, "optimize", "odd/1", "--to", "distilled", "--min-agreement", "0.5",
                 "--max-abs-proba-diff", "1")  # fmt: skip
    assert loose.returncode == 0, loose.stderr
    assert "Candidates of odd/1" in loose.stdout and "distilled" in loose.stdout
    assert "Registered odd/3 (distilled, " in loose.stdout and "): passed" in loose.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("odd/1",), "step 'pre.abs' is a FunctionTransformer calling absolute"),
        (("churn/1", "--to", "compiled"), "--to compiled applies to tree ensembles"),
        (("trees/1", "--to", "onnx-int8"), "onnx-int8 does not apply"),
        (("churn/1", "--to", "distilled", "--student", "tree"), "Unknown student kind 'tree'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    exe: str, home: Path, args: tuple[str, ...], message: str
) -> None:
    result = _run(exe, home, "optimize", *args)
    assert result.returncode == 2 and result.stderr.startswith("Error: "), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_compiled_candidate_is_built_with_the_c_compiler_and_registered(
    exe: str, home: Path
) -> None:
    result = _run(exe, home, "optimize", "trees/1", "--to", "compiled")
    assert result.returncode == 0, result.stderr
    assert "Registered trees/2 (compiled): passed" in result.stdout
    assert "Treelite" not in result.stdout + result.stderr  # the build's chatter is silenced


def test_compiled_without_a_c_compiler_says_what_to_install(exe: str, home: Path) -> None:
    # PATH holds only the virtual environment's scripts: no gcc, cc or clang there
    result = _run(exe, home, "optimize", "trees/1", "--to", "compiled", path=str(Path(exe).parent))
    assert result.returncode == 2 and result.stderr.startswith("Error: "), result.stderr
    assert "needs a C compiler" in result.stderr and "apt-get install gcc" in result.stderr


def test_a_regressor_s_table_shows_relative_differences_and_no_agreement(
    exe: str, tmp_path: Path
) -> None:
    """A regressor has no classes to agree on, and its differences are of predictions
    relative to max(1, |prediction|): headed so, not as probabilities."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(2)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = 100 * x["a"] + rng.normal(size=300)
    home = _home_with(tmp_path / "home", "reg", Ridge().fit(x, y), x, y)
    result = _run(exe, home, "optimize", "reg/1", "--to", "onnx", columns=None)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "max rel. |Δ|" in text and "|Δp|" not in text and "agreement" not in text
