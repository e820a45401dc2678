"""Model runtimes: one predict per batch, fed a matrix only where it means the same as a frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelpilot.config import Settings
from modelpilot.serving.runtime import ModelRuntime
from modelpilot.workspace import Workspace


def _data(rows: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(50, 10, rows),
            "score": rng.normal(0, 1, rows).astype(np.float32),
        }
    )
    return x, (x["income"] + 5 * x["score"] > 50).astype(int)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(Settings(home=tmp_path / "home"))


def _served(ws: Workspace, model: object, example: pd.DataFrame) -> ModelRuntime:
    mv = ws.log_model(model, "m", input_example=example)
    return ModelRuntime("m", mv.version, ws.load_model(mv.ref))


def test_a_plain_estimator_fitted_on_columns_gets_a_matrix_with_identical_results(
    workspace: Workspace,
) -> None:
    x, y = _data()
    rt = _served(workspace, LogisticRegression(max_iter=500).fit(x, y), x.head())
    assert rt.takes_matrix
    rows = rt.validator.from_records(x.head(7).to_dict("records"))
    out = rt.predict_rows(rows)  # no feature-name warning escapes (warnings are errors here)
    reference = workspace.load_model("m/1").predict_proba(x.head(7))
    assert out.probabilities is not None
    np.testing.assert_allclose(out.probabilities, reference)
    assert out.predictions.tolist() == reference.argmax(axis=1).tolist()


def test_an_estimator_fitted_on_a_plain_matrix_gets_a_matrix_without_warnings(
    workspace: Workspace,
) -> None:
    x, y = _data()
    plain = LogisticRegression(max_iter=500).fit(x.to_numpy(), y)
    with pytest.warns(UserWarning, match="fitted without feature names"):  # at log time only
        rt = _served(workspace, plain, x.head())
    assert rt.takes_matrix
    assert rt.predict_rows([[30, 50.0, 0.5]]).probabilities is not None


def test_pipelines_that_may_select_columns_by_name_keep_the_dataframe(
    workspace: Workspace,
) -> None:
    x, y = _data()
    by_name = ColumnTransformer([("s", StandardScaler(), ["income", "score"])], remainder="drop")
    rt = _served(workspace, make_pipeline(by_name, LogisticRegression()).fit(x, y), x.head())
    assert not rt.takes_matrix
    frame = rt.frame([[30, 50.0, 0.5]])
    assert isinstance(frame, pd.DataFrame)
    assert frame.dtypes.astype(str).tolist() == ["int64", "float64", "float32"]
    assert rt.predict_rows([[30, 50.0, 0.5]]).predictions.shape == (1,)
