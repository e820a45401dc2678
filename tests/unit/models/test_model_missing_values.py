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
