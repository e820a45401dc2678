"""Conversion over a catalogue of common estimators: every converted model agrees with its
source on data with missing values and categories it never saw.

Tolerances, and why: the graph runs in float32 (ONNX-ML's tree and imputer operators take
float tensors; ONNX Runtime has no double kernels for several of them), the source in float64.
- classifiers: |Δp| ≤ 1e-4 on every row and class agreement ≥ 99.9%. float32 carries ~7
  significant digits; summing a few hundred tree leaves or a logistic of a scaled dot product
  loses about one of them;
- regressors: |Δ| ≤ 1e-4 · max(1, |prediction|), relative for the same reason;
- trees after a scaler (marked ``leaf_flips``): the input enters as float32, so a scaled
  value can differ from scikit-learn's by one float32 step and, lying at a split threshold,
  take the other branch: that row differs by a whole leaf (1/20 of a forest's vote). There,
  ≥ 95% of rows within the bounds above and agreement ≥ 99%. Measured: the forest regressor
  differs on 3% of rows (all of them with a scaled integer column; without the scaler, on
  none). Scaling runs in double (``div_cast``), which removes most flips but not these.
  The fidelity gate is what catches such a candidate: ``optimize`` marks it failed. The
  imputer here imputes the mean: a median of an even count is the midpoint of two training
  values, exactly where a tree puts a threshold, so median-imputed rows flip far more often
  (docs/optimize.md).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from modelpilot.artifacts import MemoryArtifactStore
from modelpilot.errors import InvalidInput
from modelpilot.models import LoadedModel, build_package, load_package
from modelpilot.optimization.convert import quantise_int8, to_onnx

# Minutes of work: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow

NUMERIC = ["age", "income", "visits"]
MAX_DIFF, MIN_AGREEMENT = 1e-4, 0.999
MIN_ROWS_WITHIN_WITH_FLIPS, MIN_AGREEMENT_WITH_FLIPS = 0.95, 0.99
LEAF_FLIPS = {"tree", "forest", "boosting", "hist-boosting", "forest-regressor"}


def _frame(rows: int, seed: int, plans: tuple[str, ...] = ("basic", "pro", "max")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows),
            "income": rng.lognormal(3, 0.5, rows),
            "visits": rng.integers(0, 20, rows).astype(np.int64),
            "plan": rng.choice(plans, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.15, "income"] = np.nan
    return frame


def _label(frame: pd.DataFrame, classes: int = 2) -> np.ndarray:
    score = (frame["age"] - 40) / 12 + (frame["plan"] == "pro") + frame["income"].fillna(20) / 40
    return np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))


def _preprocess() -> ColumnTransformer:
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    return ColumnTransformer(
        [("num", numeric, NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])]
    )


def _pipe(estimator: Any) -> Pipeline:
    return Pipeline([("pre", _preprocess()), ("model", estimator)])


def _booster_pipe(estimator: Any, *, imputed: bool = False) -> Pipeline:
    """The usual pipeline for a gradient-boosting library: numbers as they are (NaN included,
    which the booster handles itself) or mean-imputed, text one-hot encoded."""
    numeric = SimpleImputer() if imputed else "passthrough"
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    pre = ColumnTransformer([("num", numeric, NUMERIC), ("cat", encoder, ["plan"])])
    return Pipeline([("pre", pre), ("model", estimator)])


def _constant_fill_pipe(estimator: Any) -> Pipeline:
    """Numbers with a constant fill, as trees need (no scaler): scikit-learn keeps an integer
    ``fill_value`` in an object array of statistics, which used to be taken for a text
    imputer and broke the conversion ("Unsupported proposed value ''")."""
    numeric = SimpleImputer(strategy="constant", fill_value=-1)
    encoder = OneHotEncoder(handle_unknown="ignore")
    pre = ColumnTransformer([("num", numeric, NUMERIC), ("cat", encoder, ["plan"])])
    return Pipeline([("pre", pre), ("model", estimator)])


# (name, model factory, numeric columns only, classes: 0 for a regressor, leaf flips possible)
CATALOGUE: list[tuple[str, Callable[[], Any], bool, int]] = [
    ("logistic", lambda: _pipe(LogisticRegression(max_iter=500)), False, 2),
    ("logistic-3-classes", lambda: _pipe(LogisticRegression(max_iter=500)), False, 3),
    ("tree", lambda: _pipe(DecisionTreeClassifier(max_depth=6, random_state=0)), False, 2),
    ("forest", lambda: _pipe(RandomForestClassifier(30, max_depth=8, random_state=0)), False, 2),
    ("boosting", lambda: _pipe(GradientBoostingClassifier(n_estimators=40, random_state=0)), False, 2),  # noqa: E501
    ("hist-boosting", lambda: _pipe(HistGradientBoostingClassifier(max_iter=40, random_state=0)), False, 2),  # noqa: E501
    ("hist-boosting-native-nan", lambda: HistGradientBoostingClassifier(max_iter=40, random_state=0), True, 2),  # noqa: E501
    ("mlp", lambda: _pipe(MLPClassifier((16,), solver="lbfgs", max_iter=300, random_state=0)), False, 2),  # noqa: E501
    ("ridge", lambda: _pipe(Ridge()), False, 0),
    ("forest-regressor", lambda: _pipe(RandomForestRegressor(20, max_depth=8, random_state=0)), False, 0),  # noqa: E501
    ("xgboost", lambda: xgboost.XGBClassifier(n_estimators=40, max_depth=4), True, 2),
    ("lightgbm", lambda: lightgbm.LGBMClassifier(n_estimators=40, verbose=-1), True, 2),
    # the boosters' scikit-learn estimators at the end of a pipeline (onnxmltools' converters
    # registered with skl2onnx): NaN as it is or mean-imputed, text one-hot encoded
    ("xgboost-in-pipeline", lambda: _booster_pipe(xgboost.XGBClassifier(n_estimators=40, max_depth=4)), False, 2),  # noqa: E501
    ("xgboost-in-pipeline-3-classes", lambda: _booster_pipe(xgboost.XGBClassifier(n_estimators=40, max_depth=4)), False, 3),  # noqa: E501
    ("lightgbm-in-pipeline", lambda: _booster_pipe(lightgbm.LGBMClassifier(n_estimators=40, verbose=-1)), False, 2),  # noqa: E501
    ("xgboost-after-imputer", lambda: _booster_pipe(xgboost.XGBClassifier(n_estimators=40, max_depth=4), imputed=True), False, 2),  # noqa: E501
    ("lightgbm-after-imputer", lambda: _booster_pipe(lightgbm.LGBMClassifier(n_estimators=40, verbose=-1), imputed=True), False, 2),  # noqa: E501
    ("xgboost-regressor-in-pipeline", lambda: _booster_pipe(xgboost.XGBRegressor(n_estimators=40, max_depth=4)), False, 0),  # noqa: E501
    ("lightgbm-regressor-in-pipeline", lambda: _booster_pipe(lightgbm.LGBMRegressor(n_estimators=40, verbose=-1)), False, 0),  # noqa: E501
    # trees behind a constant fill and no scaler: as exact as the trees alone
    ("forest-after-constant-fill", lambda: _constant_fill_pipe(RandomForestClassifier(30, max_depth=8, random_state=0)), False, 2),  # noqa: E501
    ("xgboost-after-constant-fill", lambda: _constant_fill_pipe(xgboost.XGBClassifier(n_estimators=40, max_depth=4)), False, 2),  # noqa: E501
    # a pipeline that hands its boosters a DataFrame: XGBoost names its splits by column
    ("xgboost-pandas-output", lambda: _booster_pipe(xgboost.XGBClassifier(n_estimators=40, max_depth=4)).set_output(transform="pandas"), False, 2),  # noqa: E501
]  # fmt: skip


def _loaded(model: Any, example: pd.DataFrame) -> LoadedModel:
    artifacts = MemoryArtifactStore()
    return load_package(artifacts, build_package(model, artifacts, input_example=example).digest)


def _fit(factory: Callable[[], Any], numeric_only: bool, classes: int) -> tuple[Any, list[str]]:
    train = _frame(600, seed=0)
    columns = NUMERIC if numeric_only else [*NUMERIC, "plan"]
    target = _label(train, max(classes, 2)) if classes else train["age"] * 2 + train["visits"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a small MLP on purpose
        return factory().fit(train[columns], target), columns


@pytest.mark.parametrize(("name", "factory", "numeric_only", "classes"), CATALOGUE)
def test_converted_model_agrees_with_its_source_on_nan_and_unseen_categories(
    name: str, factory: Callable[[], Any], numeric_only: bool, classes: int
) -> None:
    model, columns = _fit(factory, numeric_only, classes)
    source = _loaded(model, _frame(600, seed=0)[columns].head())
    candidate = _loaded(to_onnx(source), _frame(600, seed=0)[columns].head())
    assert candidate.flavor == "onnx" and candidate.signature.inputs == source.signature.inputs
    # the same signature, except that a float32 regression (XGBoost's) is answered as float64
    assert candidate.signature == dataclasses.replace(
        source.signature, output_dtype=candidate.signature.output_dtype
    )
    assert (
        np.dtype(candidate.signature.output_dtype).kind
        == np.dtype(source.signature.output_dtype).kind
    )
    test = _frame(400, seed=1, plans=("basic", "pro", "max", "unseen-plan"))[columns]
    assert test["income"].isna().any()
    inputs = source.prepare(test)
    if classes:
        expected, got = source.predict_proba(test), candidate.predict_proba(test)
        row_diff = np.abs(expected - got).max(axis=1)
        assert list(candidate.predictor.classes_) == list(source.classes or [])
    else:
        expected, got = source.predict(test), candidate.predict(test)
        row_diff = np.abs(expected - got) / np.maximum(1.0, np.abs(expected))
    agreement = np.mean(candidate.predict(inputs) == source.predict(inputs)) if classes else 1.0
    if name in LEAF_FLIPS:
        assert np.mean(row_diff <= MAX_DIFF) >= MIN_ROWS_WITHIN_WITH_FLIPS, (name, row_diff.max())
        assert agreement >= MIN_AGREEMENT_WITH_FLIPS, name
    else:
        assert row_diff.max() <= MAX_DIFF, (name, row_diff.max())
        assert agreement >= MIN_AGREEMENT, name


def test_function_transformer_is_refused_naming_the_step_and_why() -> None:
    from sklearn.preprocessing import FunctionTransformer

    numeric = make_pipeline(SimpleImputer(), FunctionTransformer(np.log1p), StandardScaler())
    model = Pipeline(
        [
            ("pre", ColumnTransformer([("num", numeric, NUMERIC)])),
            ("model", LogisticRegression()),
        ]
    )
    train = _frame(300, seed=0)
    model.fit(train[NUMERIC], _label(train))
    source = _loaded(model, train[NUMERIC].head())
    with pytest.raises(
        InvalidInput,
        match=r"step 'pre\.num\.functiontransformer' is a FunctionTransformer calling log1p, "
        r"arbitrary Python that an ONNX graph cannot express",
    ):
        to_onnx(source)


def test_int8_applies_to_weights_and_is_refused_for_tree_ensembles() -> None:
    mlp, columns = _fit(
        lambda: _pipe(MLPClassifier((16,), solver="lbfgs", max_iter=300, random_state=0)), False, 2
    )
    source = _loaded(mlp, _frame(600, seed=0)[columns].head())
    quantised = quantise_int8(to_onnx(source), "mlp/1")
    assert quantised.info["quantised"].startswith("int8")
    assert len(quantised.model_bytes) > 0 and quantised.predict_proba(source.prepare(
        _frame(20, seed=2)[columns])).shape == (20, 2)  # fmt: skip
    forest, columns = _fit(lambda: RandomForestClassifier(10, random_state=0), True, 2)
    trees = _loaded(forest, _frame(600, seed=0)[columns].fillna(0).head())
    with pytest.raises(InvalidInput, match="onnx-int8 does not apply to forest/1: it is a tree"):
        quantise_int8(to_onnx(trees), "forest/1")


@pytest.mark.parametrize(
    "imputer",
    [SimpleImputer(strategy="most_frequent"), SimpleImputer(strategy="constant", fill_value="n/a")],
    ids=["most-frequent", "constant"],
)
def test_text_imputer_converts_and_imputes_missing_text_as_its_source(imputer: Any) -> None:
    """The usual text branch (impute, then one-hot) looks for NaN, which skl2onnx refused
    ("implemented when the missing values are string"); missing text reaches the graph as ""."""
    train, test = _frame(600, seed=0), _frame(400, seed=1, plans=("basic", "pro", "unseen"))
    rng = np.random.default_rng(2)
    train.loc[rng.random(len(train)) < 0.1, "plan"] = np.nan  # as read_csv gives it
    test.loc[rng.random(len(test)) < 0.1, "plan"] = np.nan
    test.loc[rng.random(len(test)) < 0.05, "plan"] = None  # a JSON null (read as NaN's twin)
    text = make_pipeline(imputer, OneHotEncoder(handle_unknown="ignore"))
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            ("cat", text, ["plan"]),
        ]
    )
    columns = [*NUMERIC, "plan"]
    model = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))])
    model.fit(train[columns], _label(train.fillna({"plan": "basic"})))
    source = _loaded(model, train[columns].head())
    candidate = _loaded(to_onnx(source), train[columns].head())
    assert test["plan"].isna().sum() > 20
    row_diff = np.abs(source.predict_proba(test) - candidate.predict_proba(test)).max(axis=1)
    assert row_diff.max() <= MAX_DIFF
    assert (candidate.predict(test) == source.predict(test)).mean() >= MIN_AGREEMENT


def test_pipeline_ending_in_linear_svc_and_native_categories_are_refused_with_the_way_out() -> None:
    from sklearn.preprocessing import OrdinalEncoder
    from sklearn.svm import LinearSVC

    train = _frame(300, seed=0).fillna(0)
    svc = make_pipeline(StandardScaler(), LinearSVC()).fit(train[NUMERIC], _label(train))
    with pytest.raises(InvalidInput, match=r"pipeline that ends in a LinearSVC .* wrap the "
                       r"LinearSVC in CalibratedClassifierCV"):  # fmt: skip
        to_onnx(_loaded(svc, train[NUMERIC].head()))
    encode = ColumnTransformer([("cat", OrdinalEncoder(), ["plan"])], remainder="passthrough")
    native = Pipeline([("pre", encode), ("model", HistGradientBoostingClassifier(
        max_iter=10, categorical_features=[0]))])  # fmt: skip
    columns = [*NUMERIC, "plan"]
    native.fit(train[columns], _label(train))
    with pytest.raises(InvalidInput, match=r"step 'model' \(HistGradientBoostingClassifier\) "
                       r"encodes categorical features itself") as caught:  # fmt: skip
        to_onnx(_loaded(native, train[columns].head()))
    # the way out fits a model that already has an OrdinalEncoder in front
    said = caught.value.message
    assert "OneHotEncoder" in said and "drop categorical_features" in said
    assert "--to distilled" in said
