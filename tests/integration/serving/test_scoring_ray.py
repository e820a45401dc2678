"""``modelpilot score --executor ray``: Ray actors predict, the local scorer's output.

The Ray cases use the session's one local Ray cluster (``ray_address`` in tests/conftest.py)
and are ``slow`` (actors start in seconds each on 2 busy cores); the bad-input cases without a
cluster run in the default suite."""

from __future__ import annotations

import operator
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

import modelpilot as mp
from modelpilot.config import Settings
from modelpilot.workspace import Workspace

HERE = Path(__file__).parent
MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))


def _mixed(rows: int, seed: int) -> pd.DataFrame:
    """A categorical column and a float column, both with missing values, and an int."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(np.array(["basic", "pro", "team"], dtype=object), rows)
    plan[rng.random(rows) < 0.1] = np.nan
    usage = rng.gamma(2.0, 5.0, rows)
    usage[rng.random(rows) < 0.15] = np.nan
    return pd.DataFrame(
        {"plan": pd.Categorical(plan), "usage": usage, "age": rng.integers(18, 80, rows)}
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """mixed/1 (imputers, one-hot, logistic regression) and dies/1 (a python_function model
    whose process exits on age -1)."""
    home = tmp_path_factory.mktemp("ray-scoring") / "home"
    ws = Workspace(Settings(home=home))
    x = _mixed(400, 0)
    y = ((x["plan"] == "pro") ^ (x["usage"].fillna(0) > 10)).astype(int)
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", SimpleImputer(), ["usage", "age"]),
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent"),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    ["plan"],
                ),
            ]
        ),
        LogisticRegression(),
    ).fit(x.astype({"plan": object}), y)
    ws.log_model(model, "mixed", input_example=x.astype({"plan": object}).head(30))
    sys.path.insert(0, str(HERE))
    try:
        from serving_models import DiesOnAgeMinusOne

        ws.log_model(DiesOnAgeMinusOne(), "dies", input_example=x[["age"]].head())
    finally:
        sys.path.remove(str(HERE))
    ws.close()
    yield home


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    workspace = Workspace(Settings(home=home))
    yield workspace
    workspace.close()


def _input(path: Path, rows: int = 1_000, seed: int = 5) -> Path:
    _mixed(rows, seed).to_parquet(path, row_group_size=150)
    return path


@pytest.mark.slow
def test_ray_output_equals_the_local_output_with_missing_values_and_categories(
    ray_address: str, ws: Workspace, tmp_path: Path
) -> None:
    source = _input(tmp_path / "in.parquet")
    local = tmp_path / "local.parquet"
    on_ray = tmp_path / "ray.parquet"
    assert ws.score("mixed/1", source, local, chunk_rows=100, workers=2) == 1_000
    seen: list[int] = []
    rows = ws.score(
        "mixed/1", source, on_ray, executor="ray", chunk_rows=100, workers=2,
        progress=seen.append,
    )  # fmt: skip
    assert rows == 1_000 and sum(seen) == 1_000
    expected, got = pq.read_table(local), pq.read_table(on_ray)
    assert got.schema.equals(expected.schema, check_metadata=True), (got.schema, expected.schema)
    assert got.equals(expected)
    frame = pd.read_parquet(on_ray)
    assert list(frame.columns) == ["plan", "usage", "age", "prediction", "proba_0", "proba_1"]
    assert isinstance(frame["plan"].dtype, pd.CategoricalDtype)
    assert frame["usage"].isna().sum() == _mixed(1_000, 5)["usage"].isna().sum()  # in order


@pytest.mark.slow
def test_the_cli_scores_on_the_cluster_at_ray_address(
    ray_address: str, home: Path, ws: Workspace, tmp_path: Path
) -> None:
    source = _input(tmp_path / "in.parquet", rows=300)
    done = _score_on(ray_address, home, "mixed/1", source, tmp_path / "out.parquet", "100")
    assert done.returncode == 0, done.stderr
    assert "Scored 300 rows with mixed/1 on Ray into" in done.stdout
    ws.score("mixed/1", source, tmp_path / "local.parquet")
    assert pq.read_table(tmp_path / "out.parquet").equals(pq.read_table(tmp_path / "local.parquet"))


@pytest.mark.slow
def test_a_bad_value_fails_the_job_naming_its_column_and_leaves_no_output(
    ray_address: str, ws: Workspace, tmp_path: Path
) -> None:
    data = _mixed(600, 1).astype({"usage": object})
    data.loc[433, "usage"] = "oops"
    bad = tmp_path / "bad.csv"
    data.to_csv(bad, index=False)
    with pytest.raises(mp.InvalidInput) as local:
        ws.score("mixed/1", bad, tmp_path / "out.parquet", chunk_rows=100)
    with pytest.raises(mp.InvalidInput) as on_ray:
        ws.score("mixed/1", bad, tmp_path / "out.parquet", executor="ray", chunk_rows=100)
    assert "column 'usage' (file row 433): expected a number" in on_ray.value.message
    assert on_ray.value.message == local.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


@pytest.mark.slow
def test_an_untrusted_model_is_refused_on_ray_as_locally_and_scores_once_trusted(
    ray_address: str, ws: Workspace, tmp_path: Path
) -> None:
    """Only the actors load the model on Ray: they refuse a type nobody trusted with the
    error and message ``mp.load_model`` gives (exit 2), write nothing, and score the same
    rows as the local scorer once the caller trusts the type."""
    x = _mixed(200, 3)[["usage", "age"]].fillna(0.0)
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression())
    ref = ws.log_model(model.fit(x, x["age"] > 40), "negated", input_example=x.head()).ref
    source = tmp_path / "in.parquet"
    x.to_parquet(source)
    with pytest.raises(mp.UnsafeModel) as local:
        ws.score(ref, source, tmp_path / "out.parquet")
    with pytest.raises(mp.UnsafeModel) as on_ray:
        ws.score(ref, source, tmp_path / "out.parquet", executor="ray", workers=1)
    assert "not trusted: _operator.neg" in on_ray.value.message
    assert on_ray.value.message == local.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]

    trust = {"trusted_types": ["_operator.neg"]}
    ws.score(ref, source, tmp_path / "local.parquet", **trust)
    ws.score(ref, source, tmp_path / "ray.parquet", executor="ray", workers=1, **trust)
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "local.parquet"))


@pytest.mark.slow
def test_an_altered_package_fails_the_job_with_exit_7_and_no_output(
    ray_address: str, home: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    for blob in (p for p in (copy / "artifacts").rglob("*") if p.is_file()):
        blob.write_bytes(blob.read_bytes() + b"altered")
    shutil.rmtree(copy / "cache", ignore_errors=True)  # no verified copy to fall back on
    source = _input(tmp_path / "in.parquet", rows=100)
    done = _score_on(ray_address, copy, "mixed/1", source, tmp_path / "out.parquet", "50")
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.slow
def test_a_worker_killed_mid_job_fails_it_with_exit_6_and_no_output(
    ray_address: str, home: Path, ws: Workspace, tmp_path: Path
) -> None:
    """dies/1 ends its process on age -1, in the second of several chunks: the job ends (no
    wait on the dead actor), says a worker failed, and leaves no output; the next job on the
    same cluster still runs."""
    data = _mixed(2_000, 2)
    data.loc[1_500, "age"] = -1
    source = tmp_path / "dies.parquet"
    data.to_parquet(source, row_group_size=250)
    done = _score_on(ray_address, home, "dies/1", source, tmp_path / "out.parquet", "250")
    assert done.returncode == 6, done.stderr
    assert "on Ray failed: a worker or the cluster failed" in done.stderr
    assert "No output was written" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dies.parquet"]
    assert ws.score("mixed/1", _input(tmp_path / "in.parquet"), tmp_path / "ok.parquet",
                    executor="ray") == 1_000  # fmt: skip


def _score_on(
    ray_address: str, home: Path, ref: str, source: Path, target: Path, chunk_rows: str
) -> subprocess.CompletedProcess[str]:
    """The installed `modelpilot score --executor ray` joining the session's cluster (with
    this folder importable: dies/1's code)."""
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [MODELPILOT, "score", ref, str(source), "-o", str(target), "--executor", "ray",
         "--ray-address", ray_address, "--chunk-rows", chunk_rows],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def _cli(
    home: Path, tmp_path: Path, *args: str, python: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    source = _input(tmp_path / "in.parquet", rows=50)
    return subprocess.run(
        [*(python or [MODELPILOT]), "score", "mixed/1", str(source), "-o",
         str(tmp_path / "out.parquet"), "--executor", "ray", *args],
        capture_output=True, text=True, env={**os.environ, "MODELPILOT_HOME": str(home)},
        timeout=300, check=False,
    )  # fmt: skip


def test_without_ray_the_cli_says_how_to_install_it(home: Path, tmp_path: Path) -> None:
    no_ray = "import sys; sys.modules['ray'] = None; from modelpilot.cli.main import main; main()"
    result = _cli(home, tmp_path, python=[sys.executable, "-c", no_ray])
    assert result.returncode == 2, result.stderr
    assert "--executor ray needs Ray: pip install 'modelpilot[ray]'" in result.stderr
    assert not (tmp_path / "out.parquet").exists()


def test_a_ray_address_nothing_listens_on_exits_6_naming_it(home: Path, tmp_path: Path) -> None:
    with socket.socket() as unused:  # a port that was free a moment ago: nothing listens
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    result = _cli(home, tmp_path, "--ray-address", address)
    assert result.returncode == 6, result.stderr
    assert f"Cannot start or reach the Ray cluster at {address}: ConnectionRefusedError" in (
        result.stderr
    )
    assert not (tmp_path / "out.parquet").exists()
