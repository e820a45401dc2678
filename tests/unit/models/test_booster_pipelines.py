"""Pipelines that end in XGBoost's or LightGBM's scikit-learn estimators: logged, loaded and
served like any scikit-learn pipeline, with what they need to run recorded on the package."""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pytest
import xgboost
from crafted_packages import frame
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.errors import UnsafeModel
from modelpilot.models import read_manifest
from modelpilot.workspace import Workspace


def _pipeline(estimator: Any) -> tuple[Pipeline, Any, Any]:
    x = frame().assign(plan=lambda f: np.where(f["calls"] > 0, "pro", "basic"))
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    y = (x["age"] > 0).astype(int) if hasattr(estimator, "predict_proba") else x["income"] * 2
    return Pipeline([("pre", pre), ("model", estimator)]).fit(x, y), x, y


@pytest.mark.parametrize(
    ("estimator", "library"),
    [
        (xgboost.XGBClassifier(n_estimators=5, max_depth=2), "xgboost"),
        (xgboost.XGBRegressor(n_estimators=5, max_depth=2), "xgboost"),
        (lightgbm.LGBMClassifier(n_estimators=5, min_child_samples=2, verbose=-1), "lightgbm"),
        (lightgbm.LGBMRegressor(n_estimators=5, min_child_samples=2, verbose=-1), "lightgbm"),
    ],
    ids=["xgb-classifier", "xgb-regressor", "lgbm-classifier", "lgbm-regressor"],
)
def test_pipeline_ending_in_a_booster_loads_without_trusting_anything(
    ws: Workspace, estimator: Any, library: str
) -> None:
    model, x, _ = _pipeline(estimator)
    mv = ws.log_model(model, "boosted", input_example=x.head())
    assert mv.trusted_types == ()  # nothing had to be vouched for
    loaded = ws.load_model(mv.ref)  # refused before: "types that are not trusted: ...Booster"
    assert loaded.flavor == "sklearn"
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    requirements = read_manifest(ws.artifacts, mv.package_digest)["requirements"]
    assert any(r.startswith(f"{library}==") for r in requirements), requirements


def squared_error(labels: np.ndarray, predictions: np.ndarray) -> tuple[Any, Any]:
    """A custom XGBoost objective: a Python function the booster's estimator holds."""
    return predictions - labels, np.ones_like(predictions)


def test_a_python_function_inside_a_booster_estimator_stays_untrusted(ws: Workspace) -> None:
    model, x, _ = _pipeline(xgboost.XGBRegressor(n_estimators=3, objective=squared_error))
    mv = ws.log_model(model, "custom", input_example=x.head())
    with pytest.raises(UnsafeModel, match=r"not trusted: .*squared_error"):
        ws.load_model(mv.ref)
