"""``mp.optimize`` on registered versions: lineage, the table, refusals, failed candidates,
compiled candidates' trust and the gate's fidelity keys (SQLite and PostgreSQL, from the
shared ``settings`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost
from churn_data import churn_frame
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import modelpilot as mp
from modelpilot.assessment import gate_version
from modelpilot.errors import Conflict, InvalidInput
from modelpilot.evaluation import parse_policy

# Minutes of work: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow

COLUMNS = ["age", "income", "plan"]
NUMERIC = ["age", "income"]  # what a compiled tree ensemble takes


def _frame(rows: int, seed: int) -> pd.DataFrame:
    return churn_frame(rows, seed).drop(columns="spend")


def _pipe(model: object) -> Pipeline:
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    return Pipeline([("pre", encode), ("model", model)])


@pytest.fixture
def home(settings: mp.Settings) -> Iterator[Path]:
    mp.init(settings.home, store_uri=settings.store_uri)
    yield settings.home
    mp.workspace().close()


def _register(
    model: object,
    train: pd.DataFrame,
    test: pd.DataFrame | None = None,
    columns: list[str] = COLUMNS,
) -> str:
    model.fit(train[columns], train["churned"])  # type: ignore[attr-defined]
    with mp.start_run(experiment="churn"):
        links: dict[str, object] = {"training": mp.log_dataset(train, "churn-train")}
        if test is not None:
            links["test"] = mp.log_dataset(test, "churn-test")
        version = mp.log_model(model, "churn", input_example=train[columns].head(), datasets=links)
    return version.ref


def test_onnx_candidate_is_registered_with_lineage_and_its_table(home: Path) -> None:
    train, test = _frame(500, 0), _frame(300, 1)
    test.loc[:9, "plan"] = "enterprise"  # a category the model never saw
    source = _register(_pipe(HistGradientBoostingClassifier(max_iter=30)), train, test)
    result = mp.optimize(source, to="onnx")  # training and test data found by their roles
    (candidate,) = result.candidates
    version = mp.get_model_version(candidate.ref)
    assert candidate.passed and version.flavor == "onnx" and version.ref == "churn/2"
    assert version.tags["optimized_from"] == "churn/1" and version.tags["fidelity"] == "passed"
    assert version.run_id == mp.get_model_version(source).run_id
    assert version.signature == mp.get_model_version(source).signature
    frame = result.to_frame()
    assert list(frame["ref"]) == ["churn/1", "churn/2"]
    row = frame.set_index("ref").loc["churn/2"]
    assert row["agreement_data"] == 1.0 and row["max_abs_proba_diff_data"] < 1e-5
    assert row["agreement_holdout"] == 1.0 and row["metric"] == "roc_auc"
    assert abs(row["metric_diff"]) < 1e-2 and row["size_bytes"] > 0 and row["rows_per_s_64"] > 0
    assert frame["load_peak_bytes"].notna().all() and (frame["load_peak_bytes"] > 0).all()
    assert frame["pareto"].any()  # the Pareto mark: some row is on the front
    loaded = mp.load_model(candidate.ref)  # no trust flags: a graph holds no code
    expected = mp.load_model(source).predict_proba(test[COLUMNS])
    assert np.abs(loaded.predict_proba(test[COLUMNS]) - expected).max() < 1e-5
    card = mp.model_card(candidate.ref).to_markdown()
    assert "## Optimisation" in card and "| churn/2 | onnx | passed |" in card


def test_function_transformer_is_refused_and_nothing_is_registered(home: Path) -> None:
    train = _frame(300, 0)
    model = Pipeline(
        [
            ("pre", ColumnTransformer([("num", FunctionTransformer(np.abs), ["age", "income"])])),
            ("model", LogisticRegression()),
        ]
    )
    train = train.fillna(0)
    model.fit(train[COLUMNS], train["churned"])
    with mp.start_run():
        ref = mp.log_model(
            model, "churn", input_example=train[COLUMNS].head(), trusted_types=["numpy.absolute"]
        ).ref
    with pytest.raises(InvalidInput, match=r"step 'pre\.num' is a FunctionTransformer calling"):
        mp.optimize(ref, to=["onnx"], data=train)
    assert [v.version for v in mp.workspace().registry.list_versions("churn")] == [1]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_failed_candidate_is_kept_marked_and_refused_an_alias(home: Path) -> None:
    train = _frame(400, 0).fillna(50)
    net = MLPClassifier((32,), solver="lbfgs", max_iter=200, random_state=0)
    mlp = _pipe(make_pipeline(StandardScaler(), net))
    source = _register(mlp, train)
    result = mp.optimize(source, to=["onnx", "onnx-int8"], max_abs_proba_diff=1e-6)
    by_target = {c.target: c for c in result.candidates}
    int8 = by_target["onnx-int8"]
    assert not int8.passed  # int8 weights move probabilities far more than 1e-6
    assert mp.get_model_version(int8.ref).tags["fidelity"] == "failed"
    with pytest.raises(Conflict, match=r"failed its fidelity check .* kept for inspection"):
        mp.set_alias("churn", "champion", int8.version.version)
    mp.set_alias("churn", "champion", 1)  # the source still takes one


def test_int8_is_skipped_for_trees_with_the_reason_and_alone_is_refused(home: Path) -> None:
    train = _frame(300, 0)
    source = _register(_pipe(HistGradientBoostingClassifier(max_iter=10)), train)
    result = mp.optimize(source, to="onnx,onnx-int8")
    assert [c.target for c in result.candidates] == ["onnx"]
    assert "it is a tree ensemble" in result.table.skipped["onnx-int8"]
    with pytest.raises(InvalidInput, match="onnx-int8 does not apply"):
        mp.optimize(source, to="onnx-int8")
    with pytest.raises(InvalidInput, match="input 'plan' is string; a compiled tree ensemble"):
        mp.optimize(source, to="compiled")
    with pytest.raises(InvalidInput, match="Unknown student kind 'tree'"):
        mp.optimize(source, to="distilled", student="tree")


def test_distilled_student_is_registered_failed_under_strict_bounds_and_never_aliased(
    home: Path, tmp_path: Path
) -> None:
    train, test = _frame(600, 0), _frame(300, 1)
    source = _register(_pipe(HistGradientBoostingClassifier(max_iter=60)), train, test)
    result = mp.optimize(source, to="distilled", student="hgb")  # default bounds: strict
    (candidate,) = result.candidates
    version = mp.get_model_version(candidate.ref)
    assert not candidate.passed and version.flavor == "sklearn"
    assert version.tags["fidelity"] == "failed" and version.tags["distill.student"] == "hgb"
    assert version.tags["optimized_from"] == source and "hgb student" in version.description
    row = result.to_frame().set_index("ref").loc[candidate.ref]
    assert row["agreement_holdout"] < 0.999 and row["metric"] == "roc_auc"
    assert row["metric_diff_lower"] <= row["metric_diff"] <= row["metric_diff_upper"]
    assert row["size_bytes"] < result.to_frame().set_index("ref").loc[source, "size_bytes"]
    with pytest.raises(Conflict, match="failed its fidelity check"):
        mp.set_alias("churn", "champion", version.version)
    assert mp.load_model(candidate.ref).predict(test[COLUMNS]).shape == (300,)
    loose = float(row[["max_abs_proba_diff_data", "max_abs_proba_diff_holdout"]].max())
    policy = tmp_path / "gate.yaml"
    policy.write_text(f"fidelity:\n  min_agreement: 0.8\n  max_abs_proba_diff: {loose}\n")
    assert gate_version(mp.workspace(), candidate.ref, policy, test, "churned").passed
    accepted = mp.optimize(
        source, to="distilled", student="hgb", min_agreement=0.8, max_abs_proba_diff=1.0
    )
    assert accepted.candidates[0].passed
    mp.set_alias("churn", "champion", accepted.candidates[0].version.version)


def test_gate_fidelity_keys_judge_the_stored_fidelity(home: Path, tmp_path: Path) -> None:
    train = _frame(300, 0)
    source = _register(_pipe(LogisticRegression(max_iter=500)), train.fillna(50))
    candidate = mp.optimize(source, data=train.fillna(50)).candidates[0].ref
    policy = tmp_path / "gate.yaml"
    policy.write_text("fidelity:\n  min_agreement: 0.999\n  max_abs_proba_diff: 0.001\n")
    passed = gate_version(mp.workspace(), candidate, policy, train.fillna(50), "churned")
    assert passed.passed and [c.name for c in passed.checks] == [
        "fidelity.min_agreement",
        "fidelity.max_abs_proba_diff",
    ]
    plain = gate_version(mp.workspace(), source, policy, train.fillna(50), "churned")
    assert not plain.passed and "not made by modelpilot optimize" in plain.checks[0].message


def test_fidelity_policy_errors_name_the_line_and_key() -> None:
    with pytest.raises(
        InvalidInput,
        match=r"gate.yaml, line 3, fidelity.min_agrement: unknown key. Did you mean "
        r"'min_agreement'\?",
    ):
        parse_policy("metrics: {}\nfidelity:\n  min_agrement: 0.9\n", source="gate.yaml")
    with pytest.raises(InvalidInput, match=r"line 2, fidelity.min_agreement: .*less than or"):
        parse_policy("fidelity:\n  min_agreement: 1.5\n", source="gate.yaml")


def test_compiled_candidate_is_registered_with_its_library_trusted_on_the_version(
    home: Path,
) -> None:
    train, test = _frame(500, 0), _frame(300, 1)
    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    source = _register(hgb, train, test, columns=NUMERIC)
    result = mp.optimize(source, to="onnx,compiled", target="churned")
    by_target = {c.target: c for c in result.candidates}
    candidate = by_target["compiled"]
    version = mp.get_model_version(candidate.ref)
    assert candidate.passed and version.flavor == "compiled"
    assert version.tags["optimized_from"] == source and version.tags["fidelity"] == "passed"
    assert version.signature == mp.get_model_version(source).signature
    (trusted,) = version.trusted_types
    assert trusted.startswith("compiled:sha256:")
    row = result.to_frame().set_index("ref").loc[candidate.ref]
    assert row["flavor"] == "compiled" and row["agreement_data"] == 1.0
    assert row["max_abs_proba_diff_holdout"] < 1e-12 and row["metric_diff"] == 0.0
    assert row["size_bytes"] > 0 and row["rows_per_s_64"] > 0
    loaded = mp.load_model(candidate.ref)  # trusted by what optimize recorded, no flags
    expected = mp.load_model(source).predict_proba(test[NUMERIC])
    assert np.abs(loaded.predict_proba(test[NUMERIC]) - expected).max() < 1e-12
    with pytest.raises(InvalidInput, match=r"already a compiled candidate \(of churn/1\)"):
        mp.optimize(candidate.ref, to="compiled")


def test_compiled_is_skipped_for_a_linear_model_and_alone_is_refused(home: Path) -> None:
    train = _frame(300, 0).fillna(50)
    source = _register(LogisticRegression(max_iter=500), train, columns=NUMERIC)
    result = mp.optimize(source, to="onnx,compiled")
    assert [c.target for c in result.candidates] == ["onnx"]
    assert "applies to tree ensembles" in result.table.skipped["compiled"]
    with pytest.raises(InvalidInput, match=r"applies to tree ensembles .* is a LogisticRegression"):
        mp.optimize(source, to="compiled")
    assert sorted(v.version for v in mp.workspace().registry.list_versions("churn")) == [1, 2]


def test_compiled_candidate_failing_fidelity_is_kept_and_refused_an_alias(home: Path) -> None:
    train = _frame(400, 0)
    source = _register(xgboost.XGBClassifier(n_estimators=20, max_depth=3), train, columns=NUMERIC)
    # XGBoost sums float32 leaves in another order: ~1e-7 apart, so a zero bound fails it
    result = mp.optimize(source, to="compiled", max_abs_proba_diff=0.0)
    (candidate,) = result.candidates
    assert not candidate.passed
    assert mp.get_model_version(candidate.ref).tags["fidelity"] == "failed"
    with pytest.raises(Conflict, match=r"failed its fidelity check .* kept for inspection"):
        mp.set_alias("churn", "champion", candidate.version.version)


def test_each_step_is_told_as_it_starts_for_the_status_line(home: Path) -> None:
    from modelpilot.optimization import optimize_version

    source = _register(_pipe(HistGradientBoostingClassifier(max_iter=10)), _frame(300, 0))
    steps: list[str] = []
    ws = mp.workspace()
    optimize_version(
        ws.registry, ws.artifacts, ws.datasets, ws.load_model, source, "onnx,distilled",
        student="linear", progress=steps.append,
    )  # fmt: skip
    assert steps == [
        "Loading churn/1 and its data",
        "Converting to ONNX",
        "Distilling a student (linear)",
        "Measuring churn/1: outputs, speed, memory",
        "Measuring the onnx candidate: fidelity, speed, memory",
        "Measuring the distilled candidate: fidelity, speed, memory",
        "Registering the candidates",
    ]
