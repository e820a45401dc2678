"""The likely cause printed next to a failed fidelity check of an ONNX candidate: trees after
a scaler or a median imputer (float32 splits), and nothing where the structure does not say."""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from modelpilot.optimization.convert import float32_flip_hint


def _pipe(numeric: Any, model: Any) -> Pipeline:
    pre = ColumnTransformer([("num", numeric, ["a"]), ("cat", OneHotEncoder(), ["b"])])
    return Pipeline([("pre", pre), ("model", model)])


@pytest.mark.parametrize(
    ("numeric", "named"),
    [
        (StandardScaler(), ["'pre.num'"]),
        (make_pipeline(SimpleImputer(strategy="median"), MinMaxScaler()),
         ["'pre.num.simpleimputer'", "'pre.num.minmaxscaler'"]),
        (SimpleImputer(), ["'pre.num'"]),  # the mean: also a value between training values
    ],
)  # fmt: skip
def test_trees_after_a_scaler_or_a_median_are_named_with_the_way_out(
    numeric: Any, named: list[str]
) -> None:
    hint = float32_flip_hint(_pipe(numeric, RandomForestRegressor()))
    assert all(name in hint for name in named), hint
    assert "float32" in hint and "--max-abs-proba-diff" in hint


@pytest.mark.parametrize(
    "model",
    [
        _pipe(StandardScaler(), LogisticRegression()),  # not trees: float32 rounding only
        _pipe("passthrough", HistGradientBoostingClassifier()),
        _pipe(SimpleImputer(strategy="constant", fill_value=-1), RandomForestRegressor()),
        HistGradientBoostingClassifier(),
        object(),  # not scikit-learn at all
    ],
)
def test_no_hint_where_the_structure_gives_no_cause(model: Any) -> None:
    assert float32_flip_hint(model) == ""
