"""Pipelines on the Ray executor (``--executor ray``), on the session's local Ray cluster
(``ray_address`` in conftest.py): records and the step cache through the SDK, the CLI through
the installed executable, and the error without Ray. Failures, retries, timeouts and wrong
return types run on both executors in test_pipelines_run.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_files import churn_frame, copy_pipelines

import modelpilot as mp

# Minutes of work: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow

PARAMS = {"data": "churn-data", "holdout": "churn-holdout"}
ARGS = ["--param", "data=churn-data", "--param", "holdout=churn-holdout"]


def _states(run: mp.PipelineRun) -> dict[str, str]:
    return {s.name: s.state.value for s in run.steps}


@pytest.fixture
def code(ray_address: str, settings: mp.Settings, tmp_path: Path) -> Iterator[Path]:
    """A fresh home (SQLite or PostgreSQL: the tasks must get the store URI) with the data,
    and the pipeline files to run."""
    mp.init(settings.home, store_uri=settings.store_uri)
    mp.log_dataset(churn_frame(120, 0), "churn-data")
    mp.log_dataset(churn_frame(60, 1), "churn-holdout")
    yield copy_pipelines(tmp_path / "code")
    mp.workspace().close()


def test_steps_run_as_ray_tasks_record_to_the_store_and_are_reused(code: Path) -> None:
    target = f"{code / 'churn_pipeline.py'}:churn"
    first = mp.run_pipeline(target, PARAMS, executor="ray")
    assert _states(first) == {"load": "SUCCEEDED", "train": "SUCCEEDED", "evaluate": "SUCCEEDED"}
    assert first.executor == "ray"
    load, train, evaluate = (mp.get_run(s.run_id or "") for s in first.steps)
    assert load.metrics == {"rows": 120.0}  # logged inside the step, in the Ray worker
    assert load.parent_run_id == first.run_id and load.status is mp.RunStatus.FINISHED
    assert "loaded 120 rows of churn-data@" in (first.step("load").log_tail or "")
    assert set(train.metrics) == {"train_accuracy"}
    assert evaluate.tags["modelpilot.input_models"] == "churn/1"
    assert mp.get_model_version("churn").run_id == train.id
    accuracy = first.step("evaluate").output
    assert accuracy is not None and accuracy["value"]["accuracy"] > 0.7

    again = mp.run_pipeline(target, PARAMS, executor="ray")
    assert set(_states(again).values()) == {"CACHED"}
    mp.log_dataset(churn_frame(60, 2), "churn-holdout")  # new data: only its consumer reruns
    new_data = mp.run_pipeline(target, PARAMS, executor="ray")
    assert _states(new_data) == {"load": "CACHED", "train": "CACHED", "evaluate": "SUCCEEDED"}


def _cli(
    project: Path, *args: str, python: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPILOT_HOME": str(project / "home"), "COLUMNS": "200"}
    env.pop("MODELPILOT_STORE_URI", None)
    command = python or [str(Path(sys.executable).with_name("modelpilot"))]
    return subprocess.run(
        [*command, "pipelines", "run", *args],
        capture_output=True, text=True, env=env, cwd=project, timeout=300, check=False,
    )  # fmt: skip


def test_the_cli_runs_steps_on_the_ray_cluster_at_ray_address(
    ray_address: str, tmp_path: Path
) -> None:
    project = copy_pipelines(tmp_path / "project")
    mp.init(project / "home")
    mp.log_dataset(churn_frame(100, 0), "churn-data")
    mp.log_dataset(churn_frame(50, 1), "churn-holdout")
    mp.workspace().close()
    done = _cli(project, "churn_pipeline.py:churn", *ARGS, "--executor", "ray",
                "--ray-address", ray_address)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(3 steps, 0 cached;" in done.stdout and "succeeded" in done.stdout


def test_without_ray_the_cli_says_how_to_install_it(tmp_path: Path) -> None:
    project = copy_pipelines(tmp_path / "project")
    no_ray = "import sys; sys.modules['ray'] = None; from modelpilot.cli.main import main; main()"
    result = _cli(project, "faulty_pipeline.py:failing", "--executor", "ray",
                  python=[sys.executable, "-c", no_ray])  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--executor ray needs Ray: pip install 'modelpilot[ray]'" in result.stderr


def test_a_ray_address_nothing_listens_on_exits_6_naming_it(tmp_path: Path) -> None:
    project = copy_pipelines(tmp_path / "project")
    with socket.socket() as unused:  # a port that was free a moment ago: nothing listens
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    result = _cli(project, "faulty_pipeline.py:failing", "--executor", "ray",
                  "--ray-address", address)  # fmt: skip
    assert result.returncode == 6, result.stderr
    assert f"Cannot start or reach the Ray cluster at {address}: ConnectionRefusedError" in (
        result.stderr
    )
