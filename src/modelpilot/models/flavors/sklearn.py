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
checked node by node (a custom objective function stays untrusted).

Functions are on the list only where an estimator stores them as a parameter and they compute
on the arrays they are given (SelectKBest's ``f_classif``, ``numpy.mean``), and so is
``functools.partial``, whose callable is a node of its own, checked like any other. Any other
function (``PyFuncDistance``, a ``FunctionTransformer``'s) and anything else outside numpy and
scikit-learn stay off the list.
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
# Private classes that public estimators store, off skops' list (found by saving every fitted
# estimator of sklearn.utils.all_estimators: tests/unit/models/test_sklearn_estimator_trust.py):
# calibrators, an MLP's optimiser state, a Gaussian process's fitted binary classifier, a
# bisecting k-means tree, a spline transformer's B-splines. Data only.
_SKLEARN_PRIVATE_CLASSES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "scipy.interpolate._bsplines.BSpline",
)
# Functions that estimators hold as parameters, each a pure computation on the arrays it is
# given: univariate scores (SelectKBest's default f_classif ...), k-means' inner loops,
# FeatureAgglomeration's pooling, the input check HistGradientBoosting applies to the columns
# its categorical encoder passes through, and the array conversion a B-spline keeps.
_PURE_FUNCTIONS = (
    "sklearn.utils.validation.check_array",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "sklearn.feature_selection._univariate_selection.r_regression",
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    "numpy.mean",
    "numpy.median",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
    # HistGradientBoosting with categorical features keeps partial(check_array, ...): a partial
    # only binds arguments to a callable that is a node of its own, checked against this list
    # like any other, so it can call nothing the list does not already allow.
    "functools.partial",
)
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

    Data types (numpy dtypes and scalars, fitted trees, search trees, distance metrics,
    losses, kernels, boosters), none of which can call code when constructed, and the pure
    functions estimators keep as parameters (module docstring).

    >>> {"numpy.dtype", "numpy.float64", "sklearn.tree._tree.Tree"} <= sklearn_safe_types()
    True
    >>> {"posix.system", "builtins.eval", "builtins.getattr"} & sklearn_safe_types()
    set()
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
    return frozenset(
        {
            "numpy.dtype",
            *scalars,
            *dtypes,
            *_SKLEARN_INTERNALS,
            *_SKLEARN_PRIVATE_CLASSES,
            *_PURE_FUNCTIONS,
            *metrics,
            *_subclasses("sklearn._loss.loss", "BaseLoss"),  # e.g. TweedieRegressor's loss
            *_subclasses("sklearn.gaussian_process.kernels", "Kernel"),  # RBF, Product ...
            *boosters,
        }
    )


def _subclasses(module_name: str, base_name: str) -> set[str]:
    """The classes of ``module_name`` derived from its ``base_name`` (scikit-learn data classes
    that fitted estimators store), as skops names them; none if a private module moved in
    another scikit-learn release (such models then need trusting)."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return set()
    base = getattr(module, base_name, None)
    if not isinstance(base, type):
        return set()
    return {
        f"{module_name}.{name}"
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, base) and value.__module__ == module_name
    }


def _booster_libraries(model: object) -> list[str]:
    """The gradient-boosting libraries whose estimators ``model`` holds (a pipeline's steps)."""
    from modelpilot.models.steps import estimator_steps

    modules = {type(step).__module__.split(".")[0] for _, step in estimator_steps(model)}
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
        meta: dict[str, Any] = {
            "file": _FILE,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
        }
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
