"""Columns in pandas' own dtypes (nullable ``Int64``/``Float64``, ``boolean``, Arrow-backed,
categories, timezone-aware date/times) get the signature of their values, not ``string``.

Before, every extension dtype was read as text: a nullable integer column accepted
``"forty"`` and handed the model a string, and a UTC timestamp column was free text."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.errors import InvalidInput
from modelpilot.models.signature import infer_signature
from modelpilot.serving.runtime import ModelRuntime
from modelpilot.workspace import Workspace


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pd.Series([1, None, 3], dtype="Int64"), ("float64", True)),
        (pd.Series([1, 2, 3], dtype="int64[pyarrow]"), ("float64", False)),
        (pd.Series([1.5, None, 2.0], dtype="Float64"), ("float64", True)),
        (pd.Series([1.5, 2.0, 3.0], dtype="double[pyarrow]"), ("float64", False)),
        (pd.Series([True, False, True], dtype="boolean"), ("bool", False)),
        (pd.Series(["a", None, "b"], dtype="string"), ("string", True)),
        (pd.Series(["a", "b", "c"], dtype="string[pyarrow]"), ("string", False)),
        (pd.Series(pd.Categorical(["x", "y", "x"])), ("string", False)),
        (pd.Series(pd.Categorical([1, 2, 1])), ("int64", False)),
        (
            pd.Series(pd.to_datetime(["2026-01-01", "2026-02-01", None], utc=True)),
            ("datetime", True),
        ),
    ],
    ids=lambda v: str(v.dtype) if isinstance(v, pd.Series) else None,
)
def test_an_extension_dtype_column_gets_the_dtype_of_its_values(
    series: pd.Series, expected: tuple[str, bool]
) -> None:
    spec = infer_signature(pd.DataFrame({"c": series})).inputs[0]
    assert (spec.dtype, spec.nullable) == expected


def test_a_model_fitted_on_nullable_integers_checks_numbers_and_takes_null(ws: Workspace) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "age": pd.array(rng.integers(18, 80, 300), dtype="Int64"),
            "plan": rng.choice(["a", "b"], 300),
        }
    )
    x.loc[x.index[::5], "age"] = pd.NA
    y = ((x["age"].fillna(40) > 40) ^ (x["plan"] == "b")).astype(int)
    model = make_pipeline(
        ColumnTransformer([("num", SimpleImputer(), ["age"]), ("cat", OneHotEncoder(), ["plan"])]),
        LogisticRegression(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    mv = ws.log_model(model, "ages", input_example=x.head(10))
    loaded = ws.load_model(mv.ref)
    request = [{"age": 30, "plan": "b"}, {"age": None, "plan": "a"}]
    expected = model.predict_proba(pd.DataFrame(request).astype({"age": "Int64"}))
    np.testing.assert_allclose(loaded.predict_proba(request), expected)
    runtime = ModelRuntime("ages", mv.version, loaded)
    rows = [(30.0, "b"), (None, "a")]
    np.testing.assert_allclose(runtime.predict_rows(rows).probabilities, expected)
    with pytest.raises(InvalidInput, match=r"column 'age' \(row 0\): expected a number"):
        loaded.predict([{"age": "forty", "plan": "a"}])
