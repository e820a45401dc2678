"""scikit-learn estimators and pipelines, saved with skops (never plain pickle).

On load, skops lists every type in the file that is not on its own safe list. Trust is
decided here, by the loading side: skops' list, plus :func:`sklearn_safe_types` (types that
scikit-learn's own estimators put in their files: numpy dtypes and scalar types, the fitted
tree structures, k-NN search trees and distance metrics), plus the caller's
:class:`TrustPolicy`, which the registry fills with the types recorded on the version at
registration. A list inside the package is never read: whoever writes the package controls
it (a file whose root calls ``posix.system`` would otherwise load and run).

The fitted-tree types are on the list although skops warns that a crafted ``TreePredictor``
can make ``predict`` read out of bounds: every (Hist)GradientBoosting and forest model holds
one, they cannot call code, and refusing them would make the common models unloadable.
XGBoost's and LightGBM's scikit-learn estimators and their boosters are on the list too, so a
pipeline ending in ``XGBClassifier`` or ``LGBMRegressor`` loads like any other: a booster's
state is its model in the library's own format, read by the library's parser
(``XGBoosterUnserializeFromBuffer``, ``LGBM_BoosterLoadModelFromString``), exactly what the
xgboost and lightgbm flavors already load by default; whatever else the estimator holds is
checked node by node (a custom objective function stays untrusted). Functions
(``functools.partial``, ``PyFuncDistance``) and anything else outside numpy and scikit-learn
stay off the list.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from modelpilot.errors import UnsafeModel
from modelpilot.models.flavors.base import Predictor, TrustPolicy

_FILE = "model.skops"

# Cython structures that scikit-learn's fitted estimators store (found by saving the
# catalogue in tests/contract/test_sklearn_catalogue_contract.py).
_SKLEARN_INTERNALS = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
)
_DISTANCE_MODULE = "sklearn.metrics._dist_metrics"
# Gradient-boosting libraries' estimators inside a pipeline (found by saving pipelines ending in
# each): the boosters hold their model in the library's own format, never pickle. OrderedDict
# is LightGBM's container for its best scores.
_BOOSTER_TYPES = {
    "xgboost": (
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.sklearn.XGBRFClassifier",
        "xgboost.sklearn.XGBRFRegressor",
    ),
    "lightgbm": (
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "collections.OrderedDict",
    ),
}


@cache
def sklearn_safe_types() -> frozenset[str]:
    """Types scikit-learn's own estimators need, trusted by the loader on top of skops' list.

    Data types only (numpy dtypes and scalars, fitted trees, search trees, distance
    metrics), never functions: none of them can call code when constructed.

    >>> {"numpy.dtype", "numpy.float64", "sklearn.tree._tree.Tree"} <= sklearn_safe_types()
    True
    >>> "posix.system" in sklearn_safe_types() or "functools.partial" in sklearn_safe_types()
    False
    """
    import numpy as np

    scalars = {f"{t.__module__}.{t.__qualname__}" for t in set(np.sctypeDict.values())}
    dtypes = {f"numpy.dtypes.{n}" for n in np.dtypes.__all__}
    try:  # a private module: if a future scikit-learn moves it, k-NN models need trusting
        distances = dir(importlib.import_module(_DISTANCE_MODULE))
    except ImportError:
        distances = []
    metrics = {
        f"{_DISTANCE_MODULE}.{n}"
        for n in distances
        if n.endswith(("Distance32", "Distance64")) and not n.startswith("PyFunc")
    }
    boosters = {name for names in _BOOSTER_TYPES.values() for name in names}
    return frozenset({"numpy.dtype", *scalars, *dtypes, *_SKLEARN_INTERNALS, *metrics, *boosters})


def _booster_libraries(model: object) -> list[str]:
    """The gradient-boosting libraries whose estimators ``model`` holds (a pipeline's steps)."""
    from modelpilot.models.steps import estimator_steps

    modules = {type(step).__module__.split(".")[0] for _, step in estimator_steps(model, "")}
    return sorted(modules & set(_BOOSTER_TYPES))


def _beyond_safe_list(found: list[str]) -> list[str]:
    return [t for t in found if t not in sklearn_safe_types()]


class SklearnFlavor:
    """Any ``sklearn.base.BaseEstimator`` (after the xgboost/lightgbm flavors had their turn)."""

    name = "sklearn"
    requirements = ("scikit-learn", "skops", "numpy", "scipy")
    is_code_by_reference = False

    def matches(self, model: object) -> bool:
        """True for scikit-learn estimators."""
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Dump with skops."""
        import skops.io

        skops.io.dump(model, folder / _FILE)
        meta = {"file": _FILE, "class": f"{type(model).__module__}.{type(model).__qualname__}"}
        libraries = _booster_libraries(model)
        if libraries:  # a served copy, a batch job or an image needs them installed
            meta["requirements"] = libraries
        return meta

    def untrusted_types(self, folder: Path, meta: dict[str, Any]) -> list[str]:
        """Types in the file that neither skops nor :func:`sklearn_safe_types` trusts."""
        import skops.io

        path = folder / meta.get("file", _FILE)
        return _beyond_safe_list(skops.io.get_untrusted_types(file=path))

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Load with skops, refusing types that neither the loader nor the caller trusts."""
        import skops.io

        path = folder / meta.get("file", _FILE)
        found = skops.io.get_untrusted_types(file=path)
        refused = trust.refused(_beyond_safe_list(found))
        if refused:
            raise UnsafeModel(
                f"its {meta.get('class', 'scikit-learn')} file contains types that are not "
                f"trusted: {', '.join(refused)}. Trusted are skops' safe types, the types "
                "scikit-learn's estimators need, and those recorded on the version when it "
                "was registered (never a list inside the package). If you trust where this "
                f"model came from, pass trusted_types={refused!r} to load_model, or log it "
                f"with mp.log_model(..., trusted_types={refused!r}).",
                field="trusted_types",
            )
        model = skops.io.load(path, trusted=found)
        if not hasattr(model, "predict"):
            raise UnsafeModel(f"the stored object {type(model).__name__} has no predict method.")
        return model  # type: ignore[no-any-return]
