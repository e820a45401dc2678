"""The SDK as users call it: every function of ``modelpilot.__all__`` through ``mp.<name>``.

Each test starts with ``mp.init`` on a fresh home (SQLite and PostgreSQL, from the shared
``settings`` fixture), so nothing touches ``~/.modelpilot``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelpilot as mp
from modelpilot.predictions import LogBatch, write_segments
from modelpilot.predictions.labels import read_labels
from modelpilot.workspace import Workspace

# The SDK functions a test below calls as mp.<name>; pinned against __all__.
CALLED = {
    "ab_test", "active_run", "canary", "create_deployment", "dataset_card", "delete_alias",
    "deployment_history", "detect_drift", "end_run", "estimate_performance", "evaluate", "flush",
    "get_dataset", "get_deployment", "get_metric_history", "get_model_version", "get_run", "init",
    "lineage", "list_models", "load_dataset", "load_model", "log_artifact", "log_batch",
    "log_dataset", "log_labels", "log_metric", "log_metrics", "log_model", "log_param",
    "log_params", "model_card", "optimize", "promote", "read_predictions", "rollback",
    "search_runs", "set_alias", "set_tag", "set_tags", "shadow", "start_run", "tune",
    "update_model_card", "verify_audit", "workspace", "step", "pipeline", "run_pipeline",
    "get_pipeline_run", "score",
}  # fmt: skip


@pytest.fixture
def home(settings: mp.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``mp.init`` on a fresh home; the default home is elsewhere, to catch writes to it.
    Metrics are flushed only on demand (a long interval), so ``mp.flush`` is what commits them."""
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "default-home"))
    monkeypatch.setenv("MODELPILOT_METRIC_FLUSH_INTERVAL_MS", "3600000")
    mp.init(settings.home, store_uri=settings.store_uri)
    yield settings.home
    while mp.active_run() is not None:
        mp.end_run()
    mp.workspace().close()


def _frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(rows, 2)), columns=["a", "b"])
    return x.assign(y=(x["a"] + 0.3 * rng.normal(size=rows) > 0).astype(int))


def _register(name: str = "churn", versions: int = 2) -> pd.DataFrame:
    data = _frame()
    x = data[["a", "b"]]
    with mp.start_run(experiment="churn"):
        train = mp.log_dataset(data, "churn-train")
        for c in [1.0, 0.1][:versions]:
            mp.log_model(
                LogisticRegression(C=c).fit(x, data["y"]), name, input_example=x.head(),
                datasets=[train],
            )  # fmt: skip
    return data


def test_every_exported_function_is_called_by_a_test() -> None:
    functions = {
        name
        for name in mp.__all__
        if inspect.isfunction(getattr(mp, name)) and not inspect.isclass(getattr(mp, name))
    }
    assert functions == CALLED


def _committed(settings: mp.Settings, run_id: str, key: str) -> list[tuple[int, float]]:
    """Points of a metric as another process sees them: only what was committed."""
    reader = Workspace(mp.Settings(home=settings.home, store_uri=settings.store_uri))
    try:
        return [(p.step, p.value) for p in reader.get_metric_history(run_id, key)]
    finally:
        reader.close()


def test_a_tracked_run_records_params_tags_metrics_and_artifacts(
    home: Path, tmp_path: Path, settings: mp.Settings
) -> None:
    with mp.start_run(experiment="churn", name="first") as run:
        assert mp.active_run() is not None and mp.active_run().id == run.id  # type: ignore[union-attr]
        mp.log_param("C", 0.5)
        mp.log_params({"penalty": "l2"})
        mp.set_tag("team", "growth")
        mp.set_tags({"stage": "dev", "owner": "ana"})
        mp.log_metric("loss", 0.9)
        mp.log_metrics({"auc": 0.8, "f1": 0.7}, step=5)
        mp.log_batch("lr", [0.1, 0.05, 0.01], steps=[10, 20, 30])
        with pytest.raises(mp.NotFound, match="has no metric 'lr'"):
            _committed(settings, run.id, "lr")  # buffered for an hour
        mp.flush()
        assert _committed(settings, run.id, "lr") == [(10, 0.1), (20, 0.05), (30, 0.01)]
        (tmp_path / "notes.txt").write_text("hello")
        digests = mp.log_artifact(tmp_path / "notes.txt", "docs")
        assert list(digests) == ["docs/notes.txt"]
    assert mp.active_run() is None
    got = mp.get_run(run.id)
    assert got.params == {"C": "0.5", "penalty": "l2"}
    assert {k: got.tags[k] for k in ("team", "stage", "owner")} == {
        "team": "growth",
        "stage": "dev",
        "owner": "ana",
    }
    assert got.metrics["auc"] == 0.8 and got.metrics["loss"] == 0.9
    assert [p.step for p in mp.get_metric_history(run.id, "f1")] == [5]
    assert got.status == mp.RunStatus.FINISHED


def test_end_run_with_a_status_and_search_runs(home: Path) -> None:
    mp.start_run(experiment="exp", name="bad")
    mp.log_metric("auc", 0.4)
    mp.end_run(status=mp.RunStatus.FAILED)
    with mp.start_run(experiment="exp", name="good"):
        mp.log_metric("auc", 0.9)
    runs = mp.search_runs("exp", filter="metrics.auc > 0.5")
    assert list(runs["name"]) == ["good"]
    statuses = dict(
        zip(mp.search_runs("exp")["name"], mp.search_runs("exp")["status"], strict=True)
    )
    assert statuses == {"bad": "FAILED", "good": "FINISHED"}


def test_init_again_closes_the_previous_workspace_and_switches_home(
    home: Path, tmp_path: Path, settings: mp.Settings
) -> None:
    first = mp.workspace()
    run = mp.start_run(experiment="e")
    mp.log_metric("loss", 1.5)  # buffered for an hour unless the workspace is closed
    second = mp.init(tmp_path / "second")
    assert mp.workspace() is second and second is not first
    assert mp.active_run() is None and second.settings.home == tmp_path / "second"
    assert _committed(settings, run.id, "loss") == [(0, 1.5)]


def test_datasets_models_aliases_and_lineage(home: Path) -> None:
    data = _register()
    dataset = mp.get_dataset("churn-train")
    assert dataset.num_rows == 200
    pd.testing.assert_frame_equal(mp.load_dataset(dataset.ref), data, check_dtype=False)
    assert [m.name for m in mp.list_models()] == ["churn"]
    assert mp.set_alias("churn", "champion", 2).version == 2
    assert mp.get_model_version("churn@champion").version == 2
    model = mp.load_model("churn@champion")
    expected = LogisticRegression(C=0.1).fit(data[["a", "b"]], data["y"])
    np.testing.assert_allclose(
        model.predict(data[["a", "b"]].head(20)), expected.predict(data[["a", "b"]].head(20))
    )
    lineage = mp.lineage("churn@champion")
    assert lineage.run is not None and lineage.run["experiment"] == "churn"
    assert [(d["name"], d["version"]) for d in lineage.datasets] == [tuple(dataset.ref.split("@"))]
    mp.delete_alias("churn", "champion")
    with pytest.raises(mp.NotFound, match="No alias 'champion' on model 'churn'"):
        mp.get_model_version("churn@champion")


def test_score_writes_the_input_with_predictions_and_refuses_an_unknown_executor(
    home: Path, tmp_path: Path
) -> None:
    data = _register(versions=1)
    source = tmp_path / "in.parquet"
    data[["a", "b"]].to_parquet(source)
    assert mp.score("churn/1", source, tmp_path / "out.parquet", chunk_rows=50) == 200
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert list(scored.columns) == ["a", "b", "prediction", "proba_0", "proba_1"]
    expected = mp.load_model("churn/1").predict_proba(data[["a", "b"]])[:, 1]
    np.testing.assert_allclose(scored["proba_1"], expected)
    with pytest.raises(mp.InvalidInput, match="Unknown executor 'spark'; use 'local'"):
        mp.score("churn/1", source, tmp_path / "x.parquet", executor="spark")  # type: ignore[arg-type]


def test_model_and_dataset_cards(home: Path) -> None:
    _register(versions=1)
    assert "# Model card: churn/1" in mp.model_card("churn/1").to_markdown()
    card = mp.update_model_card("churn/1", intended_use="Rank customers for calls.")
    assert card.data["fields"] == {"intended_use": "Rank customers for calls."}
    assert "Rank customers for calls." in mp.model_card("churn/1").to_markdown()
    assert "- **Rows:** 200" in mp.dataset_card("churn-train").to_markdown()


def test_deployment_lifecycle(home: Path) -> None:
    _register()
    mp.create_deployment("web", "churn/1")
    assert [v.weight for v in mp.canary("web", "churn/2", 10).config.variants] == [90, 10]
    assert [(v.role, v.version) for v in mp.promote("web").config.variants] == [("stable", 2)]
    assert [v.role for v in mp.shadow("web", "churn/1").config.variants] == ["stable", "shadow"]
    ab = mp.ab_test("web", "churn/1", 30, "user_id")
    assert ab.config.routing_key == "user_id"
    back = mp.rollback("web", reason="bad test")
    assert [(v.role, v.version) for v in back.config.variants] == [("stable", 2)]
    assert mp.get_deployment("web").revision == back.revision
    actions = [r.action for r in mp.deployment_history("web")]
    assert actions == ["rollback", "ab", "shadow", "promote", "canary", "create"]
    audit = mp.verify_audit()  # every change above was sealed onto the chain
    assert audit.ok and audit.first_bad_id is None and audit.entries_checked >= 6
    assert mp.verify_audit(expected_head=audit.head_hash).ok


def test_predictions_and_labels_use_the_initialised_home(home: Path, tmp_path: Path) -> None:
    _register(versions=1)
    mp.create_deployment("web", "churn/1")
    rows = [
        {
            "request_id": f"r{i}", "row": 0, "timestamp_ms": 1_000 + i, "model": "churn",
            "version": 1, "deployment": "web", "variant": "stable", "latency_ms": 1.0,
            "error": None, "in.a": float(i), "out.prediction": i % 2,
        }
        for i in range(4)
    ]  # fmt: skip
    write_segments(home / "predictions", LogBatch.from_rows(rows))
    logged = mp.read_predictions("churn", deployment="web")
    assert sorted(logged["request_id"]) == ["r0", "r1", "r2", "r3"]
    assert mp.read_predictions("other").empty
    assert mp.log_labels("web", ["r0", "r1"], [0, 1]) == 2
    labels = read_labels(home, "web")
    assert dict(zip(labels["request_id"], labels["label"], strict=True)) == {"r0": 0, "r1": 1}
    assert not (tmp_path / "default-home").exists()


def test_evaluate_drift_and_label_free_performance(home: Path) -> None:
    data = _register(versions=1)
    result = mp.evaluate("churn/1", data, target="y", n_bootstrap=50, robustness=False)
    assert result.metrics["roc_auc"].value > 0.8
    reference = _frame(500, seed=1)[["a", "b"]]
    current = _frame(500, seed=2)[["a", "b"]].assign(a=lambda f: f["a"] + 2)
    assert mp.detect_drift(reference, current).drifted_columns == ["a"]
    rng = np.random.default_rng(3)
    proba = rng.beta(2, 2, 4000)
    frame = pd.DataFrame(
        {"proba": proba, "pred": (proba >= 0.5).astype(int), "target": rng.random(4000) < proba}
    ).astype({"target": int})
    out = mp.estimate_performance(frame, frame, metric="accuracy", chunk_size=2000)
    assert list(out["n_rows"]) == [2000, 2000] and out["estimated"].between(0.6, 0.9).all()


def test_optimize_registers_an_onnx_candidate_of_a_version(home: Path) -> None:
    data = _register(versions=1)
    result = mp.optimize("churn/1", to=["onnx"])  # measured on the linked training data
    assert [c.ref for c in result.candidates] == ["churn/2"] and result.candidates[0].passed
    assert mp.get_model_version("churn/2").tags["optimized_from"] == "churn/1"
    assert mp.load_model("churn/2").predict(data[["a", "b"]]).tolist() == (
        mp.load_model("churn/1").predict(data[["a", "b"]]).tolist()
    )


def test_tune_runs_child_trials_and_finds_the_best(home: Path) -> None:
    result = mp.tune(lambda p: -((p["x"] - 0.3) ** 2), {"x": (0.0, 1.0)}, n_trials=8, seed=1)
    assert len(result.trials) == 8
    assert abs(result.best_params["x"] - 0.3) < 0.2
    assert mp.get_run(result.best_run_id).metrics["score"] == pytest.approx(result.best_value)


def test_workspace_is_the_initialised_one(home: Path) -> None:
    assert mp.workspace().settings.home == home
    assert mp.workspace() is mp.workspace()


@mp.step
def _rows(data: pd.DataFrame) -> int:
    mp.log_metric("rows", len(data))
    return len(data)


@mp.step(retries=1)
def _scaled(_rows: int, factor: float) -> float:
    return _rows * factor


def test_pipelines_run_steps_as_child_runs_and_reuse_unchanged_ones(home: Path) -> None:
    data = mp.log_dataset(_frame(rows=30), "rows-data")

    @mp.pipeline
    def counted(data: mp.DatasetVersion, factor: float = 2.0) -> object:
        return _scaled(_rows(data), factor)

    seen: list[str] = []
    run = mp.run_pipeline(
        counted, {"data": "rows-data"}, executor="inline", on_step=lambda s: seen.append(s.name)
    )
    assert run.state.value == "SUCCEEDED" and run.step("_scaled").output == {
        "kind": "value", "value": 60.0,
    }  # fmt: skip
    assert seen == ["_rows", "_rows", "_scaled", "_scaled"]  # running, then succeeded
    rows_run = mp.get_run(run.step("_rows").run_id or "")
    assert rows_run.parent_run_id == run.run_id and rows_run.metrics == {"rows": 30.0}
    assert mp.get_pipeline_run(run.id).params == {"data": f"dataset {data.ref}", "factor": 2.0}
    explicit = mp.Pipeline("explicit", _scaled, _rows)
    again = mp.run_pipeline(explicit, {"data": data, "factor": 2.0}, executor="inline")
    assert [s.state.value for s in again.steps] == ["CACHED", "CACHED"]  # same code, same data
    with pytest.raises(mp.InvalidInput, match="Unknown param 'n' for pipeline 'counted'"):
        mp.run_pipeline(counted, {"data": "rows-data", "n": 1})
