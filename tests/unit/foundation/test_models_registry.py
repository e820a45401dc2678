"""Packaging, safe loading, the registry and lineage, with real models."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from modelpilot.errors import Conflict, InvalidInput, NotFound, UnsafeModel
from modelpilot.workspace import Workspace

Frame = tuple[pd.DataFrame, pd.Series]


@pytest.fixture
def frame() -> Frame:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["age", "income", "calls"])
    y = pd.Series((x["age"] + x["calls"] > 0).astype(int), name="churned")
    return x, y


def test_log_load_predict_round_trip_with_alias(ws: Workspace, frame: Frame) -> None:
    x, y = frame
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    with ws.start_run("churn"):
        train = ws.log_dataset(x.assign(churned=y), name="churn-train")
        mv = ws.log_model(model, "churn", input_example=x.head(5), datasets=[train])
    ws.set_alias("churn", "champion", mv.version)
    loaded = ws.load_model("churn@champion")
    expected = model.predict_proba(x)
    np.testing.assert_allclose(loaded.predict_proba(x), expected)
    np.testing.assert_allclose(loaded.predict_proba(x.to_numpy()), expected)
    records = x.head(3).to_dict(orient="records")
    np.testing.assert_array_equal(loaded.predict(records), model.predict(x.head(3)))
    assert ws.load_model("churn/1").version == 1
    assert loaded.requirements and any(r.startswith("scikit-learn==") for r in loaded.requirements)


@pytest.mark.parametrize(
    "make",
    [
        lambda: xgboost.XGBClassifier(n_estimators=5, max_depth=2),
        lambda: lightgbm.LGBMClassifier(n_estimators=5, verbose=-1),
        lambda: LogisticRegression(),
    ],
    ids=["xgboost", "lightgbm", "sklearn"],
)
def test_every_flavor_predicts_the_same_after_reload(
    ws: Workspace, frame: Frame, make: Any
) -> None:
    x, y = frame
    model = make().fit(x, y)
    mv = ws.log_model(model, "m", input_example=x.head(5))
    loaded = ws.load_model(mv.ref)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=1e-6)
    assert loaded.classes == [0, 1]


def test_versions_number_themselves(ws: Workspace, frame: Frame) -> None:
    x, y = frame
    model = LinearRegression().fit(x, y)
    assert [ws.log_model(model, "reg", input_example=x.head()).version for _ in range(3)] == [
        1,
        2,
        3,
    ]
    assert ws.get_model_version("reg").version == 3


def test_untrusted_types_are_refused_unless_named(ws: Workspace, frame: Frame) -> None:
    x, y = frame
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(x, y)
    mv = ws.log_model(model, "risky", input_example=x.head())
    with pytest.raises(UnsafeModel, match=r"not trusted: _operator.neg.*trusted_types="):
        ws.load_model(mv.ref)
    loaded = ws.load_model(mv.ref, trusted_types=["_operator.neg"])
    assert loaded.predict(x.head(2)).shape == (2,)


def test_unknown_model_reference_names_registered_models(ws: Workspace, frame: Frame) -> None:
    x, y = frame
    ws.log_model(LinearRegression().fit(x, y), "reg", input_example=x.head())
    with pytest.raises(NotFound, match="No registered model named 'nope'. Registered models: reg"):
        ws.load_model("nope@champion")
    with pytest.raises(NotFound, match="has no version 9. Existing versions: 1"):
        ws.load_model("reg/9")
    with pytest.raises(
        NotFound, match="No alias 'champion' on model 'reg'. Existing aliases: none"
    ):
        ws.load_model("reg@champion")
    with pytest.raises(InvalidInput, match="Invalid model reference 'reg/x'"):
        ws.load_model("reg/x")


def test_alias_to_missing_version_is_refused_and_nothing_changes(
    ws: Workspace, frame: Frame
) -> None:
    x, y = frame
    ws.log_model(LinearRegression().fit(x, y), "reg", input_example=x.head())
    ws.set_alias("reg", "champion", 1)
    with pytest.raises(NotFound, match="Cannot point alias 'champion' at reg/5"):
        ws.set_alias("reg", "champion", 5)
    assert ws.get_model_version("reg@champion").version == 1


def test_alias_moves_are_recorded_as_events(ws: Workspace, frame: Frame) -> None:
    from modelpilot import registry

    x, y = frame
    model = LinearRegression().fit(x, y)
    ws.log_model(model, "reg", input_example=x.head())
    ws.log_model(model, "reg", input_example=x.head())
    ws.set_alias("reg", "champion", 1)
    ws.set_alias("reg", "champion", 2)
    moves = [e.payload for e in registry.model_events(ws.store, "reg") if e.kind == "alias.set"]
    assert moves[0] == {"alias": "champion", "before": 1, "after": 2}


def test_version_behind_an_alias_cannot_be_deleted(ws: Workspace, frame: Frame) -> None:
    from modelpilot import registry

    x, y = frame
    ws.log_model(LinearRegression().fit(x, y), "reg", input_example=x.head())
    ws.set_alias("reg", "champion", 1)
    with pytest.raises(Conflict, match=r"alias\(es\) champion point at it"):
        registry.delete_version(ws.store, "reg", 1)
    ws.delete_alias("reg", "champion")
    registry.delete_version(ws.store, "reg", 1)
    with pytest.raises(NotFound):
        ws.get_model_version("reg/1")


def test_unserialisable_model_is_a_clear_error(ws: Workspace, frame: Frame) -> None:
    x, _ = frame
    with pytest.raises(InvalidInput, match="Cannot package a model of type builtins.object"):
        ws.log_model(object(), "bad", input_example=x.head())
    with pytest.raises(InvalidInput, match="stored by import path"):
        ws.log_model(lambda batch: np.zeros(len(batch)), "bad", input_example=x.head())


def test_input_example_columns_must_match_the_fitted_columns(ws: Workspace, frame: Frame) -> None:
    x, y = frame
    model = LogisticRegression().fit(x, y)
    with pytest.raises(
        InvalidInput, match=r"disagree with the data the model was fitted on: missing \['calls'\]"
    ):
        ws.log_model(model, "m", input_example=x.drop(columns="calls").head())
    with pytest.raises(NotFound):
        ws.get_model_version("m")


def test_corrupted_artifact_is_detected_on_load(ws: Workspace, frame: Frame) -> None:
    from modelpilot.artifacts import LocalArtifactStore
    from modelpilot.errors import CorruptArtifact
    from modelpilot.models import read_manifest

    x, y = frame
    mv = ws.log_model(LogisticRegression().fit(x, y), "m", input_example=x.head())
    store = ws.artifacts
    assert isinstance(store, LocalArtifactStore)
    file_digest = read_manifest(store, mv.package_digest)["files"]["model.skops"]
    path = store.path_for(file_digest)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CorruptArtifact, match=rf"Artifact {file_digest[:12]}… .* is corrupted"):
        ws.load_model("m/1")


def test_predict_validation_names_column_and_row(ws: Workspace, frame: Frame) -> None:
    x, y = frame
    loaded = ws.load_model(
        ws.log_model(LogisticRegression().fit(x, y), "m", input_example=x.head()).ref
    )
    bad = x.head(3).astype(object)
    bad.loc[2, "income"] = "abc"
    with pytest.raises(
        InvalidInput, match=r"column 'income' \(row 2\): expected a number \(float64\); got 'abc'"
    ):
        loaded.predict(bad)
    with pytest.raises(InvalidInput, match="missing column\\(s\\) 'calls'"):
        loaded.predict(x.drop(columns="calls"))


def test_lineage_goes_from_version_to_run_to_datasets(ws: Workspace, frame: Frame) -> None:
    x, y = frame
    with ws.start_run("churn", name="baseline") as run:
        ws.log_params({"C": 1.0})
        train = ws.log_dataset(x.assign(churned=y), name="churn-train")
        mv = ws.log_model(
            LogisticRegression().fit(x, y), "churn", input_example=x.head(), datasets=[train]
        )
    trace = ws.lineage(mv.ref)
    assert (
        trace.run is not None and trace.run["id"] == run.id and trace.run["params"] == {"C": "1.0"}
    )
    assert [d["version"] for d in trace.datasets] == [train.version]
    assert "training data churn-train@" in str(trace)


def test_sklearn_internals_are_trusted_by_the_loader_in_any_skops_file(
    tmp_path: Path, frame: Frame
) -> None:
    """Trust comes from the loading side (hardening issue, item 1): the flavor's allow list
    covers the TreePredictor every HistGradientBoosting model holds, whoever wrote the file,
    and the saving side writes no trust list into the package."""
    import skops.io

    from modelpilot.models.flavors import TrustPolicy
    from modelpilot.models.flavors.sklearn import SklearnFlavor

    x, y = frame
    model = HistGradientBoostingClassifier(max_iter=5).fit(x, y)
    meta = SklearnFlavor().save(model, tmp_path)
    assert "vouched_types" not in meta
    assert SklearnFlavor().load(tmp_path, meta, TrustPolicy()).predict(x.head(2)).shape == (2,)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    skops.io.dump(model, foreign / "model.skops")  # the same model, not saved by the flavor
    loaded = SklearnFlavor().load(foreign, {"file": "model.skops"}, TrustPolicy())
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
