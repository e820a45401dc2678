"""Names are matched in full, NUL and control characters are refused the same way on every
backend, and run artifact paths stay inside their run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from modelpilot import registry, release
from modelpilot.errors import InvalidInput
from modelpilot.tracking import service
from modelpilot.workspace import Workspace

_NOT_A_NAME = "expected 1-250 characters"
_CONTROL = "has control character U\\+0000 at position 1. Remove NUL"


def _model(ws: Workspace, name: str = "churn", **kwargs: object) -> registry.ModelVersion:
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    model = DummyClassifier().fit(x, [0, 1, 0, 1])
    return ws.log_model(model, name, input_example=x, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ws: ws.log_metric("auc\n", 0.9), _NOT_A_NAME),
        (lambda ws: ws.log_params({"depth\n": 3}), _NOT_A_NAME),
        (lambda ws: ws.set_tags({"team\n": "x"}), _NOT_A_NAME),
        (lambda ws: ws.log_dataset(pd.DataFrame({"a": [1]}), "train\n"), _NOT_A_NAME),
        (lambda ws: _model(ws, "churn\n"), "Invalid model name 'churn\\\\n'"),
        (lambda ws: ws.set_alias("churn", "champion\n", 1), "Invalid alias 'champion\\\\n'"),
        (
            lambda ws: release.create_deployment(ws.store, "churn-prod\n", "churn/1"),
            "Invalid deployment name 'churn-prod\\\\n'",
        ),
    ],
    ids=["metric", "param", "tag", "dataset", "model", "alias", "deployment"],
)
def test_a_trailing_newline_is_not_part_of_a_valid_name(
    ws: Workspace, call: Callable[[Workspace], object], match: str
) -> None:
    _model(ws)
    with ws.start_run("names"), pytest.raises(InvalidInput, match=match):
        call(ws)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda ws: ws.log_params({"note": "a\x00b"}),
            f"value of param 'note': 'a\\\\x00b' {_CONTROL}",
        ),
        (
            lambda ws: ws.set_tags({"team": "a\x00b"}),
            f"value of tag 'team': 'a\\\\x00b' {_CONTROL}",
        ),
        (
            lambda ws: ws.start_run("text", name="a\x00b", nested=True),
            f"run name: 'a\\\\x00b' {_CONTROL}",
        ),
        (
            lambda ws: ws.log_dataset(pd.DataFrame({"a": [1]}), "train", source="a\x00b"),
            f"dataset source: 'a\\\\x00b' {_CONTROL}",
        ),
        (lambda ws: _model(ws, description="a\x00b"), f"model description: 'a\\\\x00b' {_CONTROL}"),
        (
            lambda ws: _model(ws, tags={"team": "a\x00b"}),
            f"value of tag 'team': 'a\\\\x00b' {_CONTROL}",
        ),
        (
            lambda ws: ws.log_params({"note": "a\x1bb"}),
            "control character U\\+001B at position 1",
        ),
        (
            lambda ws: ws.log_dataset(pd.DataFrame({"a": [1]}), "train", role="a\x00b"),
            "Invalid dataset role name 'a\\\\x00b'",
        ),
    ],
    ids=[
        "param",
        "tag",
        "run-name",
        "dataset-source",
        "description",
        "model-tag",
        "escape",
        "dataset-role",
    ],
)
def test_nul_and_control_characters_are_refused_alike_on_every_backend(
    ws: Workspace, call: Callable[[Workspace], object], match: str
) -> None:
    with ws.start_run("text") as run:
        with pytest.raises(InvalidInput, match=match):
            call(ws)
        stored = ws.get_run(run.id)
    assert stored.params == {} and stored.tags == {}
    assert registry.list_models(ws.store) == []
    assert [r.id for r in service.get_runs(ws.store)] == [run.id]


def test_descriptions_keep_tabs_and_newlines(ws: Workspace) -> None:
    mv = _model(ws, description="line one\n\tline two")
    assert registry.get_version(ws.store, mv.ref).description == "line one\n\tline two"


@pytest.mark.parametrize(
    ("artifact_path", "match"),
    [
        ("../outside", "segment '..' would leave the run's artifacts"),
        ("/etc", "it is absolute"),
        ("a//b", "empty or '.' segment"),
        ("a/./b", "empty or '.' segment"),
        ("a\x00b", _CONTROL),
    ],
)
def test_artifact_paths_that_leave_the_run_are_refused(
    ws: Workspace, tmp_path: Path, artifact_path: str, match: str
) -> None:
    file = tmp_path / "report.txt"
    file.write_text("hello")
    with ws.start_run("artifacts") as run:
        with pytest.raises(InvalidInput, match=match):
            ws.log_artifact(file, artifact_path)
        assert list(ws.log_artifact(file, "reports/")) == ["reports/report.txt"]
    with pytest.raises(InvalidInput, match="segment '..' would leave"):
        service.record_artifact(ws.store, run.id, "a/../../x", "0" * 64, 1)
    assert list(ws.get_run(run.id).artifacts) == ["reports/report.txt"]
