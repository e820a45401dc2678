"""Model flavors, one file each; :func:`detect_flavor` picks the right one for a model."""

from __future__ import annotations

from modelpilot.errors import InvalidInput, NotFound
from modelpilot.models.flavors.base import Flavor, Predictor, TrustPolicy, class_labels
from modelpilot.models.flavors.compiled import CompiledFlavor
from modelpilot.models.flavors.lightgbm import LightGBMFlavor
from modelpilot.models.flavors.onnx import OnnxFlavor
from modelpilot.models.flavors.pyfunc import PythonFunctionFlavor
from modelpilot.models.flavors.sklearn import SklearnFlavor
from modelpilot.models.flavors.xgboost import XGBoostFlavor

# Order matters: the boosting wrappers are also scikit-learn estimators, and everything
# with a predict method would match the python_function flavor.
FLAVORS: tuple[Flavor, ...] = (
    OnnxFlavor(),  # only what `modelpilot optimize` builds; never matches a user's object
    CompiledFlavor(),  # likewise
    XGBoostFlavor(),
    LightGBMFlavor(),
    SklearnFlavor(),
    PythonFunctionFlavor(),
)


def detect_flavor(model: object) -> Flavor:
    """The first flavor that can save ``model``.

    >>> from sklearn.linear_model import LinearRegression
    >>> detect_flavor(LinearRegression()).name
    'sklearn'
    """
    for flavor in FLAVORS:
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"Cannot package a model of type {type(model).__module__}.{type(model).__qualname__}: "
        f"supported flavors are {', '.join(f.name for f in FLAVORS)} (an estimator, a booster, "
        "or an importable function/class with predict).",
        field="model",
    )


def flavor_named(name: str) -> Flavor:
    """The flavor registered under ``name``."""
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    raise NotFound(
        f"Unknown model flavor {name!r}; this modelpilot knows "
        f"{', '.join(f.name for f in FLAVORS)}. Upgrade modelpilot to load this package.",
    )


__all__ = [
    "FLAVORS",
    "Flavor",
    "Predictor",
    "TrustPolicy",
    "class_labels",
    "detect_flavor",
    "flavor_named",
]
