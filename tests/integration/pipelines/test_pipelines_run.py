"""Pipelines end to end through the SDK, with the real subprocess executor on SQLite and
PostgreSQL: records, parent and child runs, lineage, the step cache; failures, retries,
timeouts and wrong return types on the subprocess and the Ray executors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from pipeline_files import churn_frame, copy_pipelines

import modelpilot as mp
from modelpilot.pipelines import PipelineState, StepState

PARAMS = {"data": "churn-data", "holdout": "churn-holdout"}


def _states(run: mp.PipelineRun) -> dict[str, str]:
    return {s.name: s.state.value for s in run.steps}


@pytest.fixture
def code(settings: mp.Settings, tmp_path: Path) -> Iterator[Path]:
    """A fresh home with the training and holdout data, and the pipeline files to run."""
    mp.init(settings.home, store_uri=settings.store_uri)
    mp.log_dataset(churn_frame(120, 0), "churn-data")
    mp.log_dataset(churn_frame(60, 1), "churn-holdout")
    yield copy_pipelines(tmp_path / "code")
    mp.workspace().close()


def test_a_pipeline_records_runs_and_reuses_unchanged_steps(
    code: Path, settings: mp.Settings
) -> None:
    target = f"{code / 'churn_pipeline.py'}:churn"
    # Workers start in seconds each on a busy machine: on PostgreSQL (the records' backend
    # variant) the reruns after new data and new code run inline; the first run, the one that
    # passes the PostgreSQL URI to the workers, runs in subprocesses on both backends.
    later = "subprocess" if settings.store_uri is None else "inline"
    first = mp.run_pipeline(target, PARAMS)
    assert first.state is PipelineState.SUCCEEDED
    assert _states(first) == {"load": "SUCCEEDED", "train": "SUCCEEDED", "evaluate": "SUCCEEDED"}
    assert mp.get_pipeline_run(first.id[:8]) == first

    parent = mp.get_run(first.run_id or "")
    assert parent.status is mp.RunStatus.FINISHED
    assert parent.tags["modelpilot.pipeline_run_id"] == first.id
    assert parent.params["c"] == "1.0"
    load, train, evaluate = (mp.get_run(s.run_id or "") for s in first.steps)
    for child in (load, train, evaluate):
        assert child.parent_run_id == parent.id
        assert child.tags["modelpilot.parent_run_id"] == parent.id
        assert child.status is mp.RunStatus.FINISHED
    assert load.metrics == {"rows": 120.0}  # logged inside the step, in its worker process
    assert load.params["data"].startswith("dataset churn-data@")
    assert [(d.name, d.role) for d in load.datasets] == [("churn-data", "input")]
    assert set(train.metrics) == {"train_accuracy"} and train.params["c"] == "1.0"
    assert evaluate.tags["modelpilot.input_models"] == "churn/1"
    assert [d.name for d in evaluate.datasets] == ["churn-holdout"]
    version = mp.get_model_version("churn")
    assert (version.version, version.run_id) == (1, train.id)
    accuracy = first.step("evaluate").output
    assert accuracy is not None and accuracy["value"]["accuracy"] > 0.7
    assert first.step("load").output == {
        "kind": "dataset", "name": "churn.load", "digest": mp.get_dataset("churn.load").digest,
    }  # fmt: skip

    again = mp.run_pipeline(target, PARAMS)
    assert set(_states(again).values()) == {"CACHED"}
    assert [s.cached_from for s in again.steps] == [s.id for s in first.steps]
    assert [s.output for s in again.steps] == [s.output for s in first.steps]
    assert all(s.run_id is None for s in again.steps)
    assert mp.get_model_version("churn").version == 1  # nothing retrained

    mp.log_dataset(churn_frame(60, 2), "churn-holdout")  # new data: only its consumer reruns
    new_data = mp.run_pipeline(target, PARAMS, executor=later)
    assert _states(new_data) == {"load": "CACHED", "train": "CACHED", "evaluate": "SUCCEEDED"}

    source = code / "churn_pipeline.py"  # new code in train: it and what consumes it rerun
    source.write_text(
        source.read_text().replace("LogisticRegression(C=c)", "LogisticRegression(C=c / 4)")
    )
    new_code = mp.run_pipeline(target, PARAMS, executor=later)
    assert _states(new_code) == {"load": "CACHED", "train": "SUCCEEDED", "evaluate": "SUCCEEDED"}
    assert mp.get_model_version("churn").version == 2


@dataclass(frozen=True)
class Faulty:
    """The file of pipelines that go wrong, and the executor to run them on."""

    path: Path
    executor: Literal["subprocess", "ray"]

    def fail(self, name: str, params: dict[str, object] | None = None) -> mp.PipelineFailed:
        with pytest.raises(mp.PipelineFailed) as caught:
            self.run(name, params)
        return caught.value

    def run(self, name: str, params: dict[str, object] | None = None) -> mp.PipelineRun:
        return mp.run_pipeline(f"{self.path}:{name}", params, executor=self.executor)


@pytest.fixture(params=["subprocess", pytest.param("ray", marks=pytest.mark.slow)])
def faulty(
    request: pytest.FixtureRequest, sqlite_settings: mp.Settings, tmp_path: Path
) -> Iterator[Faulty]:
    """A fresh SQLite home (these tests check the executors, not the backend) and the files,
    on each executor that enforces timeouts (the Ray one on the session's local cluster)."""
    if request.param == "ray":
        request.getfixturevalue("ray_address")
    mp.init(sqlite_settings.home)
    yield Faulty(copy_pipelines(tmp_path / "code") / "faulty_pipeline.py", request.param)
    mp.workspace().close()


def test_a_failing_step_stops_the_pipeline_with_its_error_and_log(faulty: Faulty) -> None:
    error = faulty.fail("failing")
    assert error.step == "explode" and error.exit_code == 11
    assert "Pipeline 'failing' failed at step 'explode' (attempt 1/1): ZeroDivisionError" in (
        error.message
    )
    assert "about to divide 2 by zero" in error.message  # the step's log tail
    run = mp.get_pipeline_run(error.pipeline_run_id)
    assert run.state is PipelineState.FAILED
    assert _states(run) == {"prepare": "SUCCEEDED", "explode": "FAILED", "never": "SKIPPED"}
    assert run.step("never").run_id is None  # never started: no child run
    failed = run.step("explode")
    assert failed.error == "ZeroDivisionError: integer division or modulo by zero"
    assert failed.log_tail is not None and "Traceback" in failed.log_tail
    assert mp.get_run(failed.run_id or "").status is mp.RunStatus.FAILED
    assert mp.get_run(run.run_id or "").status is mp.RunStatus.FAILED


def test_a_step_that_fails_once_succeeds_on_its_retry(faulty: Faulty, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    run = faulty.run("retrying", {"counter": str(counter)})
    step = run.step("flaky")
    assert (step.state, step.attempt, step.max_attempts) == (StepState.SUCCEEDED, 2, 2)
    assert step.output == {"kind": "value", "value": 2}
    assert counter.read_text() == "2"


def test_a_step_past_its_timeout_is_killed(faulty: Faulty) -> None:
    started = time.monotonic()
    error = faulty.fail("hanging")
    assert time.monotonic() - started < 120  # the step sleeps 600 s
    assert "Step 'hang' timed out after 0.5 s (timeout_s=0.5); its process was killed" in (
        error.message
    )
    step = mp.get_pipeline_run(error.pipeline_run_id).step("hang")
    assert step.state is StepState.FAILED and "hanging" in (step.log_tail or "")


def test_a_wrong_return_type_fails_at_once_naming_step_and_type(faulty: Faulty) -> None:
    error = faulty.fail("wrong_type")
    assert "Step 'wrong' returned a set: a step returns a pandas DataFrame" in error.message
    step = mp.get_pipeline_run(error.pipeline_run_id).step("wrong")
    assert (step.attempt, step.max_attempts) == (1, 3)  # no retry can fix a type


def test_a_step_the_worker_cannot_import_is_refused_before_the_run(faulty: Faulty) -> None:
    @mp.step
    def local() -> int:
        return 1

    with pytest.raises(mp.InvalidInput, match=r"Step 'local' .* cannot be imported by a step "
                       r"worker: define it at the top level"):  # fmt: skip
        mp.run_pipeline(mp.Pipeline("inner", local), executor=faulty.executor)
    assert mp.workspace().store is not None
    from modelpilot.pipelines import list_pipeline_runs

    assert list_pipeline_runs(mp.workspace().store) == []  # nothing recorded
