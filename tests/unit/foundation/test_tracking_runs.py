"""Runs, params, tags and metrics through the Workspace (the SDK's engine)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from modelpilot.errors import Conflict, InvalidInput, NotFound
from modelpilot.tracking import RunStatus
from modelpilot.workspace import Workspace


def test_run_block_that_raises_is_marked_failed(ws: Workspace) -> None:
    with pytest.raises(RuntimeError), ws.start_run("churn") as run:
        raise RuntimeError("boom")
    assert ws.get_run(run.id).status is RunStatus.FAILED


def test_finished_run_keeps_params_latest_metrics_and_tags(ws: Workspace) -> None:
    with ws.start_run("churn", name="first", tags={"team": "growth"}) as run:
        ws.log_params({"max_depth": 6, "lr": 0.1})
        ws.log_metric("auc", 0.80, step=1)
        ws.log_metric("auc", 0.91, step=3)
        ws.log_metric("auc", 0.85, step=2)
    stored = ws.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.params == {"max_depth": "6", "lr": "0.1"}
    assert stored.metrics == {"auc": 0.91}  # the highest step wins, not the last logged
    assert stored.tags == {"team": "growth"}
    assert stored.end_ms is not None and stored.end_ms >= stored.start_ms
    assert stored.environment["python"].count(".") == 2


def test_metric_history_keeps_every_point_in_step_order(ws: Workspace) -> None:
    with ws.start_run("churn") as run:
        for value in (0.5, 0.4, 0.3):
            ws.log_metric("loss", value)
    history = ws.get_metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.5), (1, 0.4), (2, 0.3)]
    assert all(p.timestamp_ms > 0 for p in history)


def test_relogging_a_param_with_a_different_value_is_a_conflict(ws: Workspace) -> None:
    with ws.start_run("churn"):
        ws.log_params({"max_depth": 6})
        ws.log_params({"max_depth": 6})  # same value: fine
        with pytest.raises(
            Conflict, match=r"Param 'max_depth' .* is already '6'; cannot change it to '7'"
        ):
            ws.log_params({"max_depth": 7})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_metric_is_refused_in_the_caller(ws: Workspace, bad: float) -> None:
    with (
        ws.start_run("churn"),
        pytest.raises(InvalidInput, match="Metric 'loss' must be a finite number"),
    ):
        ws.log_metric("loss", bad)


def test_non_numeric_metric_names_the_type(ws: Workspace) -> None:
    with ws.start_run("churn"), pytest.raises(InvalidInput, match=r"got '0.9' \(str\)"):
        ws.log_metric("auc", "0.9")  # type: ignore[arg-type]


def test_logging_without_a_run_says_how_to_start_one(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="No active run. Start one with"):
        ws.log_metric("auc", 0.9)


def test_nested_run_records_its_parent(ws: Workspace) -> None:
    with ws.start_run("tune") as parent, ws.start_run("tune", nested=True) as child:
        pass
    assert ws.get_run(child.id).parent_run_id == parent.id


def test_second_top_level_run_while_one_is_active_is_refused(ws: Workspace) -> None:
    with ws.start_run("a"), pytest.raises(InvalidInput, match="still active"):
        ws.start_run("b")


def test_unknown_run_id_is_not_found(ws: Workspace) -> None:
    with pytest.raises(NotFound, match="No run with id 'nope'"):
        ws.get_run("nope")


def test_unknown_metric_lists_the_logged_ones(ws: Workspace) -> None:
    with ws.start_run("churn") as run:
        ws.log_metric("auc", 0.9)
    with pytest.raises(NotFound, match="Logged metrics: auc"):
        ws.get_metric_history(run.id, "f1")


def test_batch_logging_stores_every_point(ws: Workspace) -> None:
    with ws.start_run("churn") as run:
        ws.log_batch("loss", [float(i) for i in range(5000)])
    history = ws.get_metric_history(run.id, "loss")
    assert len(history) == 5000
    assert history[-1].step == 4999 and history[-1].value == 4999.0


def test_artifacts_files_and_folders_are_stored_by_digest(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("beta")
    with ws.start_run("churn") as run:
        stored = ws.log_artifact(folder)
    assert sorted(stored) == ["plots/a.txt", "plots/sub/b.txt"]
    assert ws.artifacts.get_bytes(ws.get_run(run.id).artifacts["plots/sub/b.txt"]) == b"beta"
