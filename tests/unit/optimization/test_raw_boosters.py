"""Raw XGBoost and LightGBM Boosters (``xgboost.train``, ``lightgbm.train``), as teams train
them: logged with a DataFrame example, loaded back, and converted to ONNX with the same
predictions as their source.

A raw Booster trained with a classifier objective predicts probabilities (of class 1 for two
classes, of each class for more), not labels; its ONNX graph writes those as its second
output. The candidate used to answer the graph's first output, the label, and failed its
fidelity check by up to 0.5; an XGBoost Booster could not be logged at all (its ``predict``
takes a ``DMatrix``, and the example was tried on the Booster itself).
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost

from modelpilot.artifacts import MemoryArtifactStore
from modelpilot.models import LoadedModel, build_package, load_package
from modelpilot.optimization.convert import to_onnx

# Converts and loads several models (seconds): `make test-slow` (and .ci/run) runs it.
pytestmark = pytest.mark.slow


def _data(classes: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(600, 5)), columns=[f"c{i}" for i in range(5)])
    x.loc[rng.random(600) < 0.1, "c2"] = np.nan  # the boosters route missing values
    score = x["c0"] + x["c1"].abs() - x["c3"]
    if not classes:
        return x, score.to_numpy()
    return x, np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))


def _xgboost(objective: str, classes: int) -> tuple[Any, pd.DataFrame]:
    x, y = _data(classes)
    params: dict[str, Any] = {"objective": objective, "max_depth": 3}
    if classes > 2:
        params["num_class"] = classes
    return xgboost.train(params, xgboost.DMatrix(x, label=y), 20), x


def _lightgbm(objective: str, classes: int) -> tuple[Any, pd.DataFrame]:
    x, y = _data(classes)
    params: dict[str, Any] = {"objective": objective, "verbose": -1, "min_data_in_leaf": 5}
    if classes > 2:
        params["num_class"] = classes
    return lightgbm.train(params, lightgbm.Dataset(x, label=y), 20), x


BOOSTERS = [
    ("xgboost-binary", lambda: _xgboost("binary:logistic", 2)),
    ("xgboost-3-classes", lambda: _xgboost("multi:softprob", 3)),
    ("xgboost-regression", lambda: _xgboost("reg:squarederror", 0)),
    ("lightgbm-binary", lambda: _lightgbm("binary", 2)),
    ("lightgbm-3-classes", lambda: _lightgbm("multiclass", 3)),
    ("lightgbm-regression", lambda: _lightgbm("regression", 0)),
]


def _loaded(model: Any, example: pd.DataFrame) -> LoadedModel:
    artifacts = MemoryArtifactStore()
    return load_package(artifacts, build_package(model, artifacts, input_example=example).digest)


def _native(booster: Any, x: pd.DataFrame) -> np.ndarray:
    if isinstance(booster, xgboost.Booster):
        return np.asarray(booster.predict(xgboost.DMatrix(x)))
    return np.asarray(booster.predict(x))


@pytest.mark.parametrize(("name", "make"), BOOSTERS, ids=[n for n, _ in BOOSTERS])
def test_a_raw_booster_logs_loads_and_converts_with_its_own_predictions(
    name: str, make: Any
) -> None:
    booster, x = make()
    source = _loaded(booster, x.head(5))
    assert [s.name for s in source.signature.inputs] == list(x.columns)
    expected = _native(booster, x)
    np.testing.assert_allclose(source.predict(x), expected, rtol=0, atol=1e-12)
    candidate = _loaded(to_onnx(source), x.head(5))
    got = candidate.predict(x)
    assert got.shape == expected.shape, name
    scale = np.maximum(1.0, np.abs(expected))
    assert float(np.max(np.abs(got - expected) / scale)) <= 1e-5, name
