"""mp.tune: trials as child runs, pruning, parallel processes, resume after a crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping

import pytest

from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.tuning import TrialContext
from modelpilot.workspace import Workspace

SPACE = {"x": (-5.0, 5.0), "depth": (1, 4), "kind": ["a", "b"]}


def quadratic(params: Mapping[str, object]) -> float:
    """Best at x = 2, kind = 'b'."""
    x = float(params["x"])  # type: ignore[arg-type]
    return -((x - 2.0) ** 2) + (0.5 if params["kind"] == "b" else 0.0)


def test_each_trial_is_a_child_run_and_the_best_is_marked(ws: Workspace) -> None:
    result = ws.tune(quadratic, SPACE, n_trials=12, metric="score", study_name="q")
    runs = ws.search_runs("tuning")
    children = runs[runs["parent_run_id"] == result.parent_run_id]
    assert len(children) == 12
    assert set(children["params.kind"]) <= {"a", "b"}
    best = ws.get_run(result.best_run_id)
    assert best.tags["tuning.best"] == "true"
    assert best.metrics["score"] == pytest.approx(result.best_value)
    assert result.best_value == pytest.approx(children["metrics.score"].max())


def reports_then_scores(params: Mapping[str, object], ctx: TrialContext) -> float:
    x = float(params["x"])  # type: ignore[arg-type]
    for step in range(5):
        ctx.report(-abs(x) * (step + 1), step)
    return -abs(x)


def test_pruned_trials_are_recorded_and_do_not_win(ws: Workspace) -> None:
    result = ws.tune(
        reports_then_scores, {"x": (-10.0, 10.0)}, n_trials=15, study_name="p", metric="neg_abs"
    )
    states = result.trials["state"].value_counts().to_dict()
    assert states.get("COMPLETE", 0) >= 1
    assert states.get("PRUNED", 0) >= 1, states
    best = result.trials[result.trials["user_attrs_run_id"] == result.best_run_id]
    assert best["state"].tolist() == ["COMPLETE"]
    complete = result.trials[result.trials["state"] == "COMPLETE"]
    assert result.best_value == pytest.approx(complete["value"].max())


def test_parallel_processes_share_one_study(settings: Settings) -> None:
    ws = Workspace(settings)
    result = ws.tune(quadratic, SPACE, n_trials=6, n_jobs=2, study_name="par")
    assert (result.trials["state"] == "COMPLETE").sum() == 6
    assert len(set(result.trials["user_attrs_run_id"])) == 6
    ws.close()


_CRASHING = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from modelpilot.config import Settings
    from modelpilot.workspace import Workspace

    calls = []

    def train(params):
        calls.append(1)
        if len(calls) == 4:
            os._exit(9)  # the machine dies in the middle of the fourth trial
        return float(params["x"])

    settings = Settings(home=Path(sys.argv[1]), store_uri=sys.argv[2] or None)
    Workspace(settings).tune(train, {"x": (0.0, 1.0)}, n_trials=6, study_name="resume")
    """
)


def resume_train(params: Mapping[str, object]) -> float:
    return float(params["x"])  # type: ignore[arg-type]


def test_a_crashed_study_resumes_from_its_last_trial(settings: Settings) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASHING, str(settings.home), settings.store_uri or ""],
        check=False,
    )
    assert crashed.returncode == 9
    ws = Workspace(settings)
    result = ws.tune(resume_train, {"x": (0.0, 1.0)}, n_trials=6, study_name="resume")
    states = dict(zip(result.trials["number"], result.trials["state"], strict=True))
    assert [states[n] for n in range(3)] == ["COMPLETE"] * 3
    assert states[3] == "FAIL"  # the trial that was running when the process died
    assert sorted(n for n, s in states.items() if s == "COMPLETE") == [0, 1, 2, 4, 5, 6]
    ws.close()


def test_bad_space_and_bad_return_are_clear_errors(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match=r"Search space 'x': low \(3\) must be below high \(1\)"):
        ws.tune(quadratic, {"x": (3, 1)}, n_trials=1)
    with pytest.raises(InvalidInput, match="returned metrics \\['auc'\\] but not 'f1'"):
        ws.tune(lambda p: {"auc": 1.0}, {"x": (0.0, 1.0)}, n_trials=1, metric="f1", study_name="m")


def test_resume_is_a_noop_when_enough_trials_completed(ws: Workspace) -> None:
    first = ws.tune(resume_train, {"x": (0.0, 1.0)}, n_trials=3, study_name="done")
    again = ws.tune(resume_train, {"x": (0.0, 1.0)}, n_trials=3, study_name="done")
    assert len(again.trials) == len(first.trials) == 3
    assert again.parent_run_id == first.parent_run_id


def total(params: Mapping[str, object]) -> float:
    return sum(float(v) for v in params.values())  # type: ignore[arg-type]


def test_default_study_of_a_new_space_does_not_answer_from_the_old_one(ws: Workspace) -> None:
    first = ws.tune(total, {"x": (0.0, 1.0)}, n_trials=3, metric="auc")
    second = ws.tune(total, {"y": (5.0, 6.0)}, n_trials=3, metric="auc")
    assert second.study_name != first.study_name
    assert set(second.best_params) == {"y"} and 5.0 <= second.best_params["y"] <= 6.0
    assert second.resumed_trials == 0 and len(second.trials) == 3


def test_the_same_space_and_function_resume_and_say_so(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    first = ws.tune(resume_train, {"x": (0.0, 1.0)}, n_trials=2, metric="auc")
    with caplog.at_level("INFO", logger="modelpilot.tuning.study"):
        again = ws.tune(resume_train, {"x": (0.0, 1.0)}, n_trials=3, metric="auc")
    assert again.study_name == first.study_name
    assert again.resumed_trials == 2 and len(again.trials) == 3
    assert f"Resuming study {first.study_name!r}: 2 completed trial(s) found" in caplog.text


def test_a_different_space_under_an_existing_study_name_is_refused(ws: Workspace) -> None:
    ws.tune(resume_train, {"x": (0.0, 1.0), "k": ["a", "b"]}, n_trials=2, study_name="named")
    with pytest.raises(
        InvalidInput,
        match=r"Study 'named' was tuned over a different search space \(x: FloatDistribution\("
        r"high=1\.0, log=False, low=0\.0, step=None\) -> FloatDistribution\(high=2\.0, .*\); "
        r"no longer has k; new parameter y\)\. .*pass another study_name",
    ):
        ws.tune(resume_train, {"x": (0.0, 2.0), "y": (1, 3)}, n_trials=2, study_name="named")
