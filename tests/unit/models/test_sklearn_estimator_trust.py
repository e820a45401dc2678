"""Every scikit-learn estimator a user fits loads back without ``trusted_types``.

The loader's allow list (skops' own plus :func:`sklearn_safe_types`) was a list of what a
few common estimators store; an MLP trained with its default solver (an ``AdamOptimizer``),
``CalibratedClassifierCV``, ``SelectKBest`` (its score function) and HistGradientBoosting with
categorical features (``functools.partial(check_array)``) were refused. This saves every
estimator scikit-learn lists, fitted, and checks the loader trusts all it holds.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_selection import SelectKBest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler
from sklearn.utils import all_estimators

from modelpilot.models.flavors.sklearn import sklearn_safe_types
from modelpilot.workspace import Workspace

# skops cannot save these at all (UnsupportedTypeException): they are refused at log time.
SKOPS_UNSUPPORTED = {"Birch"}


def _fitted_estimators() -> list[tuple[str, Any]]:
    """Every classifier, regressor, transformer and clusterer with default parameters that
    fits a small positive numeric matrix (the others need text, multi-output or 1-d data)."""
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(120, 4))) + 0.1
    labels, values = (x[:, 0] > 0.8).astype(int), x[:, 1] * 2
    fitted = []
    kinds = ["classifier", "regressor", "transformer", "cluster"]
    for name, cls in all_estimators(type_filter=kinds):  # type: ignore[arg-type]
        if name in SKOPS_UNSUPPORTED:
            continue
        try:
            estimator = cls()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator.fit(x, labels if is_classifier(estimator) else values)
        except Exception:  # needs other data or parameters: not what this test is about
            continue
        fitted.append((name, estimator))
    return fitted


def test_every_fitted_estimator_holds_only_types_the_loader_trusts() -> None:
    fitted = _fitted_estimators()
    assert len(fitted) >= 120, len(fitted)  # the catalogue is not silently empty
    refused = {}
    for name, estimator in fitted:
        found = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
        beyond = sorted(set(found) - sklearn_safe_types())
        if beyond:
            refused[name] = beyond
    assert refused == {}


def _check_round_trip(ws: Workspace, name: str, model: Any, x: pd.DataFrame) -> None:
    mv = ws.log_model(model, name, input_example=x.head())
    assert mv.trusted_types == ()
    loaded = ws.load_model(mv.ref)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))


@pytest.mark.parametrize(
    "factory",
    [
        lambda: make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=50, random_state=0)),
        lambda: CalibratedClassifierCV(LogisticRegression()),
        lambda: make_pipeline(SelectKBest(k=2), LogisticRegression()),
        lambda: make_pipeline(SplineTransformer(), LogisticRegression()),
    ],
    ids=["mlp-adam", "calibrated", "select-k-best", "splines"],
)
def test_common_models_refused_before_now_load_and_predict_as_fitted(
    ws: Workspace, factory: Any
) -> None:
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (x["a"] + x["b"] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = factory().fit(x, y)
    _check_round_trip(ws, "common", model, x)


def test_native_categorical_boosting_loads_and_reads_text_as_its_categories(
    ws: Workspace,
) -> None:
    rng = np.random.default_rng(2)
    city = rng.choice(["paris", "rome", "oslo"], 300)
    x = pd.DataFrame({"a": rng.normal(size=300), "city": pd.Categorical(city)})
    y = ((x["a"] > 0) ^ (x["city"] == "rome")).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20).fit(x, y)  # categories from the dtype
    _check_round_trip(ws, "boosted", model, x)
    as_text = ws.load_model("boosted/1").predict(x.assign(city=city))  # JSON gives text
    assert (as_text == model.predict(x)).all()
