"""Which dataset monitoring compares live traffic with, and which columns count as features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.clock import now_ms
from modelpilot.data import DatasetVersion
from modelpilot.errors import InvalidInput
from modelpilot.monitoring.jobs import MonitorResult, monitor_deployment
from modelpilot.predictions import LogBatch, write_segments
from modelpilot.predictions.policy_store import set_log_policy
from modelpilot.registry import ModelVersion
from modelpilot.workspace import Workspace


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(shift, 1.0, n), "b": rng.normal(0.0, 1.0, n)})
    return x.assign(label=(x["a"] + x["b"] > 0).astype(int))


def _log_model(ws: Workspace, datasets: object) -> ModelVersion:
    train = _frame(500, seed=1)
    model = LogisticRegression().fit(train[["a", "b"]], train["label"])
    return ws.log_model(model, "churn", input_example=train[["a", "b"]].head(), datasets=datasets)  # type: ignore[arg-type]


def _serve_log(ws: Workspace, mv: ModelVersion) -> None:
    """Live rows from the training distribution, as the prediction log records them; an older
    version's log also carried ``label`` as an input (it is not this version's feature)."""
    release.create_deployment(ws.store, "churn-mon", mv.ref)
    live = _frame(400, seed=2)
    stamp = now_ms()
    rows = [
        {
            "model": "churn",
            "request_id": f"r{i}",
            "row": 0,
            "timestamp_ms": stamp,
            "version": mv.version,
            "deployment": "churn-mon",
            "variant": "stable",
            "latency_ms": 1.0,
            "error": None,
            "in.a": float(r.a),
            "in.b": float(r.b),
            "in.label": int(r.label),
            "out.prediction": int(r.label),
            "out.proba.0": 0.5,
            "out.proba.1": 0.5,
        }
        for i, r in enumerate(live.itertuples())
    ]
    write_segments(ws.settings.home / "predictions", LogBatch.from_rows(rows))


def _monitor(ws: Workspace, datasets: dict[str, DatasetVersion]) -> MonitorResult:
    mv = _log_model(ws, datasets)
    _serve_log(ws, mv)
    return monitor_deployment(ws.store, ws.artifacts, ws.settings.home, "churn-mon", window_s=3600)


def test_training_set_is_the_reference_even_when_a_holdout_sorts_first(ws: Workspace) -> None:
    train = ws.log_dataset(_frame(500, seed=1), "train-set")
    holdout = ws.log_dataset(_frame(300, seed=3, shift=4.0), "a-holdout")  # sorts first
    result = _monitor(ws, {"training": train, "test": holdout})
    assert result.drift is not None
    assert result.drift.column("a").n_reference == 500
    assert "a" not in result.drift.drifted_columns  # live matches train, not the holdout


def test_reference_role_wins_over_training(ws: Workspace) -> None:
    train = ws.log_dataset(_frame(500, seed=1), "train-set")
    sample = ws.log_dataset(_frame(500, seed=4, shift=4.0), "reference-sample")
    result = _monitor(ws, {"training": train, "reference": sample})
    assert result.drift is not None and "a" in result.drift.drifted_columns


def test_target_column_is_not_a_drift_feature(ws: Workspace) -> None:
    train = ws.log_dataset(_frame(500, seed=1), "train-set")
    result = _monitor(ws, {"training": train})
    assert result.drift is not None
    assert {c.column for c in result.drift.columns} == {"a", "b", "prediction"}


def test_a_column_the_log_policy_hashes_is_not_scored_for_drift(ws: Workspace) -> None:
    train = ws.log_dataset(_frame(500, seed=1), "train-set")
    mv = _log_model(ws, {"training": train})
    _serve_log(ws, mv)
    set_log_policy(ws.store, "churn", {"a": "hash"}, deployment="churn-mon")
    result = monitor_deployment(
        ws.store, ws.artifacts, ws.settings.home, "churn-mon", window_s=3600
    )
    assert result.drift is not None
    assert {c.column for c in result.drift.columns} == {"b", "prediction"}
    assert "Not scored for drift (the log policy does not keep them): a." in result.notes


def test_version_without_training_or_reference_data_is_a_clear_error(ws: Workspace) -> None:
    holdout = ws.log_dataset(_frame(500, seed=3), "a-holdout")
    with pytest.raises(
        InvalidInput,
        match=r"no dataset with role 'reference' or 'training'; it has a-holdout \(test\)",
    ):
        _monitor(ws, {"test": holdout})


def test_roles_are_stored_on_the_version_and_the_run(ws: Workspace) -> None:
    train = ws.log_dataset(_frame(500, seed=1), "train-set")
    holdout = ws.log_dataset(_frame(500, seed=3), "a-holdout")
    with ws.start_run("roles") as run:
        mv = _log_model(ws, {"training": train, "test": [holdout]})
    assert [(d.name, d.role) for d in mv.linked_datasets] == [
        ("a-holdout", "test"),
        ("train-set", "training"),
    ]
    assert [d.name for d in mv.datasets_with_role("training")] == ["train-set"]
    assert {(d.name, d.role) for d in ws.get_run(run.id).datasets} == {
        ("a-holdout", "test"),
        ("train-set", "training"),
    }
    plain = _log_model(ws, [train])  # a list keeps meaning training data
    assert [(d.name, d.role) for d in plain.linked_datasets] == [("train-set", "training")]


def test_unknown_dataset_role_is_refused(ws: Workspace) -> None:
    train = ws.log_dataset(_frame(500, seed=1), "train-set")
    with pytest.raises(
        InvalidInput,
        match="Unknown dataset role 'holdout': expected one of training, validation, test,",
    ):
        _log_model(ws, {"holdout": train})


def test_lineage_names_each_linked_datasets_role_without_a_run(ws: Workspace) -> None:
    train = ws.log_dataset(_frame(500, seed=1), "train-set")
    holdout = ws.log_dataset(_frame(500, seed=3), "a-holdout")
    mv = _log_model(ws, {"training": train, "test": [holdout]})
    roles = {d["name"]: d["role"] for d in ws.lineage(mv.ref).datasets}
    assert roles == {"a-holdout": "test", "train-set": "training"}
