"""Missing values: a model that copes with them accepts them, one that does not refuses them
clearly, whatever the input example happened to contain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.errors import InvalidInput
from modelpilot.serving.runtime import ModelRuntime
from modelpilot.workspace import Workspace


def _frame(rows: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, rows).astype(float),
            "usage": rng.gamma(2.0, 5.0, rows),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )
    return x, ((x["plan"] == "pro") ^ (x["usage"] > 10)).astype(int)


def test_a_pipeline_with_an_imputer_accepts_missing_values_its_clean_example_lacked(
    ws: Workspace,
) -> None:
    x, y = _frame()
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", SimpleImputer(), ["tenure", "usage"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            ]
        ),
        LogisticRegression(),
    ).fit(x, y)
    mv = ws.log_model(model, "imputed", input_example=x.head(5))  # no NaN in these rows
    loaded = ws.load_model(mv.ref)
    holes = x.head(20).copy()
    holes.loc[holes.index[::3], "tenure"] = np.nan
    assert np.array_equal(loaded.predict(holes), model.predict(holes))


def test_a_model_that_fails_on_missing_values_refuses_them_by_name(ws: Workspace) -> None:
    x, y = _frame()
    numbers = x[["tenure", "usage"]]
    mv = ws.log_model(LogisticRegression().fit(numbers, y), "plain", input_example=numbers.head(5))
    holes = numbers.head(5).copy()
    holes.loc[holes.index[2], "usage"] = np.nan
    with pytest.raises(InvalidInput, match=r"column 'usage' \(row 2\).*no missing values"):
        ws.load_model(mv.ref).predict(holes)


@pytest.mark.parametrize("unknown", ["ignore", "error"])
@pytest.mark.parametrize("trained_with", [np.nan, None], ids=["nan-from-csv", "none-from-parquet"])
def test_a_null_text_value_reaches_the_model_as_the_missing_value_it_was_fitted_with(
    ws: Workspace, trained_with: object, unknown: str
) -> None:
    """A JSON null arrives as None. A pipeline fitted on a CSV saw NaN, which its imputer
    replaces; None went past the imputer as a category it never saw: the wrong class with
    ``handle_unknown="ignore"``, a 500 with ``"error"``."""
    x, _ = _frame()
    x["plan"] = x["plan"].astype(object)
    x.loc[x.index[::4], "plan"] = trained_with
    y = ((x["usage"] > 10) | x["plan"].isna()).astype(int)  # missing text matters
    text = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="none"), OneHotEncoder(handle_unknown=unknown)
    )
    model = make_pipeline(
        ColumnTransformer([("num", "passthrough", ["tenure", "usage"]), ("cat", text, ["plan"])]),
        LogisticRegression(),
    ).fit(x, y)
    mv = ws.log_model(model, "texts", input_example=x.head(8))
    loaded = ws.load_model(mv.ref)
    request = [
        {"tenure": 3.0, "usage": 1.0, "plan": None},
        {"tenure": 3.0, "usage": 1.0, "plan": "pro"},
    ]
    as_trained = pd.DataFrame(request)
    as_trained["plan"] = as_trained["plan"].where(as_trained["plan"].notna(), trained_with)
    expected = model.predict_proba(as_trained)
    np.testing.assert_allclose(loaded.predict_proba(request), expected)  # the SDK's records
    np.testing.assert_allclose(loaded.predict_proba(request[:1]), expected[:1])  # a lone null
    runtime = ModelRuntime("texts", mv.version, loaded)  # the data plane's batch
    rows = [tuple(r.values()) for r in request]
    np.testing.assert_allclose(runtime.predict_rows(rows).probabilities, expected)


@pytest.mark.parametrize("trained_with", [np.nan, None], ids=["nan-from-csv", "none-from-parquet"])
def test_a_text_imputer_accepts_null_text_its_clean_example_lacked(
    ws: Workspace, trained_with: object
) -> None:
    """The README's way: ``input_example=df.head(5)``, five rows without a missing plan, from
    a pipeline that imputes the plan. Null text must still reach it (its own training data
    has some), as it does for a float column with an imputer."""
    x, _ = _frame()
    x["plan"] = x["plan"].astype(object)
    x.loc[x.index[5::4], "plan"] = trained_with
    y = ((x["usage"] > 10) | x["plan"].isna()).astype(int)
    imputer = SimpleImputer(strategy="most_frequent", missing_values=trained_with)
    model = make_pipeline(
        ColumnTransformer(
            [("num", "passthrough", ["tenure", "usage"]),
             ("cat", make_pipeline(imputer, OneHotEncoder()), ["plan"])]
        ),
        LogisticRegression(),
    ).fit(x, y)  # fmt: skip
    assert x.head(5)["plan"].notna().all()
    mv = ws.log_model(model, "texts", input_example=x.head(5))
    loaded = ws.load_model(mv.ref)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    request = [{"tenure": 3.0, "usage": 1.0, "plan": None}]
    as_trained = pd.DataFrame({"tenure": [3.0], "usage": [1.0], "plan": [trained_with]})
    np.testing.assert_allclose(loaded.predict_proba(request), model.predict_proba(as_trained))


def test_an_encoder_that_fails_on_missing_text_refuses_it_by_name(ws: Workspace) -> None:
    x, y = _frame()
    model = make_pipeline(
        ColumnTransformer([("num", "passthrough", ["tenure", "usage"]),
                           ("cat", OneHotEncoder(), ["plan"])]),
        LogisticRegression(),
    ).fit(x, y)  # fmt: skip
    mv = ws.log_model(model, "strict", input_example=x.head(5))
    holes = x.head(5).astype({"plan": object})
    holes.loc[holes.index[3], "plan"] = None
    with pytest.raises(InvalidInput, match=r"column 'plan' \(row 3\).*expected a string"):
        ws.load_model(mv.ref).predict(holes)
