"""evaluate(): sections on real estimators, determinism, views, and every bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn import metrics as skm
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelpilot.errors import InvalidInput
from modelpilot.evaluation import EvaluationResult, evaluate, infer_task

FAST: dict[str, Any] = {"n_bootstrap": 100, "robustness": False, "explain": False}


def churn_frame(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "tenure": rng.normal(size=n),
            "calls": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "plan": rng.choice(["basic", "pro", "<b>team</b>"], n, p=[0.6, 0.37, 0.03]),
            "region": rng.choice(["north", "south"], n),
            "gender": rng.choice(["f", "m"], n),
        }
    )
    logit = 1.5 * df["tenure"] + 0.7 * df["calls"] + 0.5 * (df["plan"] == "pro")
    df["churned"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


FEATURES = ["tenure", "calls", "noise", "plan"]


def pipeline(c: float = 1.0, numeric: tuple[str, ...] = ("tenure", "calls", "noise")) -> Any:
    ct = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan"]), (StandardScaler(), list(numeric))
    )
    return make_pipeline(ct, LogisticRegression(C=c))


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return churn_frame()


@pytest.fixture(scope="module")
def model(df: pd.DataFrame) -> Any:
    return pipeline().fit(df[FEATURES], df["churned"])


@pytest.fixture(scope="module")
def full(df: pd.DataFrame, model: object) -> EvaluationResult:
    weaker = pipeline(0.01, ("calls", "noise")).fit(df[["calls", "noise", "plan"]], df["churned"])
    return evaluate(
        model,
        df,
        "churned",
        slices=["plan", "tenure"],
        sensitive=["gender"],
        baseline=weaker,
        n_bootstrap=200,
        seed=3,
    )


class ColumnsRecorder:
    """A plain object with predict only: remembers the columns it was given."""

    def __init__(self) -> None:
        self.columns: list[str] = []

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self.columns = list(X.columns)
        return (X["tenure"] > 0).astype(int).to_numpy()


def test_binary_metrics_equal_scikit_learn_on_the_model_outputs(
    df: pd.DataFrame, model: object, full: EvaluationResult
) -> None:
    proba = model.predict_proba(df[FEATURES])[:, 1]  # type: ignore[attr-defined]
    pred = model.predict(df[FEATURES])  # type: ignore[attr-defined]
    y = df["churned"]
    assert full.task == "binary" and full.classes == [0, 1]
    assert full.metrics["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, proba), abs=1e-12)
    assert full.metrics["f1"].value == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert full.metrics["brier"].value == pytest.approx(skm.brier_score_loss(y, proba), abs=1e-12)
    auc = full.metrics["roc_auc"]
    assert auc.value is not None and auc.lower is not None and auc.upper is not None
    assert auc.lower < auc.value < auc.upper
    assert full.features == FEATURES


def test_multiclass_with_string_labels_matches_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    y = np.select([X["a"] > 0.5, X["b"] > 0], ["gold", "silver"], "bronze")
    data = X.assign(tier=y)
    clf = LogisticRegression().fit(X, y)
    r = evaluate(clf, data, "tier", **FAST)
    assert r.task == "multiclass" and r.classes == ["bronze", "gold", "silver"]
    proba = clf.predict_proba(X)
    assert r.metrics["log_loss"].value == pytest.approx(skm.log_loss(y, proba), abs=1e-12)
    assert r.metrics["f1_macro"].value == pytest.approx(
        skm.f1_score(y, clf.predict(X), average="macro"), abs=1e-12
    )
    assert r.calibration is not None and r.calibration.kind == "top_label"


def test_regression_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"x": rng.normal(size=400)})
    data["y"] = 3 * data["x"] + rng.normal(size=400)
    reg = LinearRegression().fit(data[["x"]], data["y"])
    r = evaluate(reg, data, "y", **FAST)
    pred = reg.predict(data[["x"]])
    assert r.task == "regression" and r.calibration is None
    assert r.metrics["rmse"].value == pytest.approx(
        skm.root_mean_squared_error(data["y"], pred), abs=1e-12
    )
    assert r.metrics["r2"].value == pytest.approx(skm.r2_score(data["y"], pred), abs=1e-12)


def test_features_exclude_target_slices_and_sensitive_columns(df: pd.DataFrame) -> None:
    recorder = ColumnsRecorder()
    r = evaluate(recorder, df, "churned", slices=["plan"], sensitive=["gender"], **FAST)
    assert recorder.columns == ["tenure", "calls", "noise", "region"]
    assert r.task == "binary" and "roc_auc" not in r.metrics  # predict only: no probabilities
    assert any("no predict_proba" in w for w in r.warnings)


def test_feature_names_in_win_over_the_default_columns(df: pd.DataFrame) -> None:
    small = LogisticRegression().fit(df[["tenure"]], df["churned"])
    r = evaluate(small, df, "churned", **FAST)
    assert r.features == ["tenure"]


def test_task_inference_and_override() -> None:
    assert infer_task(pd.Series([1, 2, 3, 2])) == "multiclass"
    assert infer_task(pd.Series(np.arange(100))) == "regression"
    assert infer_task(pd.Series([True, False])) == "binary"
    assert infer_task(pd.Series([1, 2, 3]), LinearRegression()) == "regression"
    data = pd.DataFrame({"x": np.arange(60.0), "y": np.arange(60) % 3})
    reg = LinearRegression().fit(data[["x"]], data["y"])
    assert evaluate(reg, data, "y", task="regression", **FAST).task == "regression"


def test_slices_hold_subset_metrics_and_warn_when_small(
    df: pd.DataFrame, model: object, full: EvaluationResult
) -> None:
    pro = full.slice("plan", "pro")
    rows = df["plan"] == "pro"
    proba = model.predict_proba(df.loc[rows, FEATURES])[:, 1]  # type: ignore[attr-defined]
    assert pro.n == int(rows.sum()) and not pro.is_small
    assert pro.metrics["roc_auc"].value == pytest.approx(
        skm.roc_auc_score(df.loc[rows, "churned"], proba), abs=1e-12
    )
    team = full.slice("plan", "<b>team</b>")
    assert team.is_small and team.warning is not None and "plan=<b>team</b>" in team.warning
    assert team.warning in full.warnings
    tenure = [s for s in full.slices if s.column == "tenure"]
    assert len(tenure) == 4 and sum(s.n for s in tenure) == len(df)  # quartile bins


def test_comparison_is_paired_metric_by_metric_and_slice_by_slice(full: EvaluationResult) -> None:
    assert full.comparison is not None
    auc = full.comparison.metrics["roc_auc"]
    assert auc.model == full.metrics["roc_auc"].value
    assert auc.difference is not None and auc.difference > 0.05  # the baseline lacks tenure
    bound = auc.improvement_bound(0.95)
    assert bound is not None and 0 < bound < auc.difference
    log_loss = full.comparison.metrics["log_loss"]
    assert log_loss.difference is not None and log_loss.difference < 0
    assert log_loss.improvement == -log_loss.difference  # lower is better
    per_slice = full.comparison.slice("roc_auc", "plan", "pro")
    assert per_slice.model == full.slice("plan", "pro").metrics["roc_auc"].value


def test_a_model_compared_with_itself_differs_by_exactly_zero(
    df: pd.DataFrame, model: object
) -> None:
    r = evaluate(model, df, "churned", baseline=model, **FAST)
    assert r.comparison is not None
    for d in r.comparison.metrics.values():
        assert (d.difference, d.lower, d.upper) == (0.0, 0.0, 0.0)


def test_robustness_records_models_that_fail_on_missing_values(
    full: EvaluationResult,
) -> None:
    by_name = {s.name: s for s in full.robustness}
    assert by_name["missing_0.1"].status == "failed"
    assert "NaN" in (by_name["missing_0.1"].message or "")
    noisy = by_name["noise_0.5"]
    assert noisy.status == "ok" and noisy.change is not None and noisy.change < 0
    assert by_name["unseen_category_0.2"].columns == ["plan"]


def test_a_model_that_handles_missing_values_gets_scored_under_them(df: pd.DataFrame) -> None:
    X = df[["tenure", "calls"]]
    hgb = HistGradientBoostingClassifier(max_iter=20).fit(X, df["churned"])
    r = evaluate(hgb, df[["tenure", "calls", "churned"]], "churned", n_bootstrap=0, explain=False)
    missing = {s.name: s for s in r.robustness}["missing_0.3"]
    assert missing.status == "ok" and missing.value is not None
    assert {s.name: s for s in r.robustness}["unseen_category_0.2"].status == "skipped"


def test_permutation_importance_ranks_the_informative_feature_first(
    full: EvaluationResult,
) -> None:
    ex = full.explanations
    assert ex is not None and ex.metric == "roc_auc"
    assert ex.permutation[0].feature == "tenure"
    assert {f.feature for f in ex.permutation} == set(FEATURES)
    assert ex.shap is None and any("SHAP values not computed" in n for n in ex.notes)


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_tree_models_get_built_in_shap_values(df: pd.DataFrame, library: str) -> None:
    X = df[["tenure", "calls", "noise"]]
    if library == "lightgbm":
        clf: object = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, df["churned"])
    else:
        clf = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X, df["churned"])
    data = df[["tenure", "calls", "noise", "churned"]]
    r = evaluate(clf, data, "churned", n_bootstrap=0, robustness=False)
    assert r.explanations is not None and r.explanations.shap is not None
    shap = r.explanations.shap
    assert max(shap, key=lambda k: shap[k]) == "tenure"
    assert library in (r.explanations.shap_method or "").lower()


def test_same_seed_same_result_other_seed_other_intervals(df: pd.DataFrame, model: object) -> None:
    a = evaluate(model, df, "churned", slices=["plan"], seed=5, **FAST).to_dict()
    b = evaluate(model, df, "churned", slices=["plan"], seed=5, **FAST).to_dict()
    c = evaluate(model, df, "churned", slices=["plan"], seed=6, **FAST).to_dict()
    assert a == b
    assert a["metrics"]["roc_auc"]["value"] == c["metrics"]["roc_auc"]["value"]
    assert a["metrics"]["roc_auc"]["lower"] != c["metrics"]["roc_auc"]["lower"]


def test_to_dict_is_strict_json_and_to_frame_is_long(full: EvaluationResult) -> None:
    payload = json.loads(json.dumps(full.to_dict(), allow_nan=False))
    assert payload["metrics"]["roc_auc"]["value"] == full.metrics["roc_auc"].value
    assert payload["calibration"]["bins"][0].keys() >= {"mean_predicted", "fraction_positive"}
    assert payload["comparison"]["metrics"]["roc_auc"]["difference"] > 0
    frame = full.to_frame()
    assert list(frame.columns) == ["section", "name", "column", "group", "value", "lower",
                                   "upper", "n"]  # fmt: skip
    assert set(frame["section"]) == {"metric", "slice", "calibration", "fairness", "robustness",
                                     "explanation", "comparison"}  # fmt: skip


def test_html_is_self_contained_and_escapes_data(full: EvaluationResult, tmp_path: Path) -> None:
    path = full.save_html(tmp_path / "eval.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 3
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert set(re.findall(r"https?://[^'\" ]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert "<b>team</b>" not in page and "&lt;b&gt;team&lt;/b&gt;" in page
    assert [p.name for p in tmp_path.iterdir()] == ["eval.html"]  # no temp file left


def test_model_warnings_become_notes_not_errors(df: pd.DataFrame) -> None:
    """Fitted on a NumPy array, predicted on a DataFrame: scikit-learn warns about names."""
    bare = LogisticRegression().fit(df[["tenure"]].to_numpy(), df["churned"])
    r = evaluate(bare, df[["tenure", "churned"]], "churned", **FAST)
    assert any("feature names" in n for n in r.notes)


# --- bad input -------------------------------------------------------------------------------


def test_missing_target_column(df: pd.DataFrame, model: object) -> None:
    with pytest.raises(InvalidInput, match="Target column 'churn' is not in the evaluation data"):
        evaluate(model, df, "churn", **FAST)


def test_missing_slice_column(df: pd.DataFrame, model: object) -> None:
    with pytest.raises(InvalidInput, match="Slice column 'country' is not in the evaluation data"):
        evaluate(model, df, "churned", slices=["country"], **FAST)


def test_slices_given_as_a_string(df: pd.DataFrame, model: object) -> None:
    with pytest.raises(InvalidInput, match=r"must be a list of names.*slices=\['plan'\]"):
        evaluate(model, df, "churned", slices="plan", **FAST)


def test_missing_sensitive_column(df: pd.DataFrame, model: object) -> None:
    with pytest.raises(InvalidInput, match="Sensitive column 'race' is not in the evaluation"):
        evaluate(model, df, "churned", sensitive=["race"], **FAST)


def test_sensitive_attribute_with_one_group(df: pd.DataFrame, model: object) -> None:
    one = df.assign(site="berlin")
    with pytest.raises(InvalidInput, match="Sensitive attribute 'site' has one group"):
        evaluate(model, one, "churned", sensitive=["site"], **FAST)


def test_baseline_with_a_different_task(df: pd.DataFrame, model: object) -> None:
    regressor = LinearRegression().fit(df[["tenure"]], df["churned"])
    with pytest.raises(
        InvalidInput, match="baseline .*LinearRegression, a regressor.* does not do"
    ):
        evaluate(model, df, "churned", baseline=regressor, **FAST)


def test_baseline_with_other_classes(df: pd.DataFrame, model: object) -> None:
    relabelled = df.assign(churned=df["churned"].map({0: "stay", 1: "leave"}))
    other = LogisticRegression().fit(relabelled[["tenure"]], relabelled["churned"])
    with pytest.raises(InvalidInput, match="label 0, which baseline does not know"):
        evaluate(model, df, "churned", baseline=other, **FAST)


def test_unlabelled_rows(df: pd.DataFrame, model: object) -> None:
    holes = df.assign(churned=df["churned"].astype(float).where(df.index != 7))
    with pytest.raises(InvalidInput, match=r"1 missing labels \(first at row 7\)"):
        evaluate(model, holes, "churned", **FAST)


def test_columns_the_model_was_fitted_on_are_missing(df: pd.DataFrame, model: object) -> None:
    with pytest.raises(
        InvalidInput, match=r"fitted on columns the evaluation data lacks: \['calls'\]"
    ):
        evaluate(model, df.drop(columns="calls"), "churned", **FAST)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "ranking"}, "Unknown task 'ranking'"),
        ({"n_bootstrap": -1}, "n_bootstrap must be an integer ≥ 0"),
        ({"confidence": 95}, "confidence must be between 0 and 1"),
    ],
)
def test_bad_options(
    df: pd.DataFrame, model: object, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        evaluate(model, df, "churned", **{**FAST, **kwargs})


def test_not_a_dataframe_and_not_a_model(df: pd.DataFrame, model: object) -> None:
    with pytest.raises(InvalidInput, match="needs a pandas DataFrame as data; got ndarray"):
        evaluate(model, df.to_numpy(), "churned", **FAST)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="must have a predict"):
        evaluate(object(), df, "churned", **FAST)
