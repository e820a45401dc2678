"""mp.tune(..., executor="ray"): trials as Ray tasks on the session's local Ray cluster
(``ray_address`` in tests/conftest.py), with the process executor's child runs and resume."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pytest

from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.workspace import Workspace

SPACE = {"x": (-5.0, 5.0), "kind": ["a", "b"]}


def quadratic(params: Mapping[str, object]) -> dict[str, float]:
    x = float(params["x"])  # type: ignore[arg-type]
    return {"score": -((x - 2.0) ** 2) + (0.5 if params["kind"] == "b" else 0.0), "x_abs": abs(x)}


def _children(ws: Workspace, parent: str) -> pd.DataFrame:
    runs = ws.search_runs("tuning")
    return runs[runs["parent_run_id"] == parent]


@pytest.mark.slow
def test_ray_trials_are_the_child_runs_of_the_process_executor_and_resume(
    ray_address: str, sqlite_settings: Settings
) -> None:
    ws = Workspace(sqlite_settings)
    local = ws.tune(quadratic, SPACE, n_trials=4, n_jobs=2, study_name="on-processes")
    on_ray = ws.tune(quadratic, SPACE, n_trials=4, n_jobs=2, study_name="on-ray", executor="ray")
    expected, got = _children(ws, local.parent_run_id), _children(ws, on_ray.parent_run_id)
    assert len(got) == len(expected) == 4
    shape = ["params.x", "params.kind", "metrics.score", "metrics.x_abs", "tags.tuning.state"]
    assert got[shape].notna().all().all() and expected[shape].notna().all().all()
    assert set(got["tags.tuning.state"]) == {"complete"}
    assert list(on_ray.trials.columns) == list(local.trials.columns)
    assert got["params.x"].nunique() == 4  # concurrent tasks did not draw the same params
    assert ws.get_run(on_ray.best_run_id).tags["tuning.best"] == "true"

    resumed = ws.tune(quadratic, SPACE, n_trials=6, n_jobs=2, study_name="on-ray", executor="ray")
    assert resumed.resumed_trials == 4 and resumed.parent_run_id == on_ray.parent_run_id
    assert len(_children(ws, on_ray.parent_run_id)) == 6
    assert (resumed.trials["state"] == "COMPLETE").sum() == 6
    ws.close()


def test_an_unknown_executor_is_refused(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="Unknown executor 'dask'; use 'process'"):
        ws.tune(quadratic, SPACE, n_trials=1, executor="dask")  # type: ignore[arg-type]
