"""scikit-learn estimators and pipelines, saved with skops (never plain pickle).

On load, skops lists every type in the file that is not on its trusted list. Some are
scikit-learn internals that are unsafe in a *foreign* file (skops warns that a crafted
``TreePredictor`` can make ``predict`` read out of bounds), yet every HistGradientBoosting
model contains one. So ``save`` records the scikit-learn types present in the file it wrote
("vouched" types); the package is content-addressed and hash-verified from the registry down,
so on load those exact bytes are the ones this flavor produced. Everything else (a numpy
function in a FunctionTransformer, a custom class, any type in a file not saved here) must be
named by the caller, or the load fails with :class:`~modelpilot.errors.UnsafeModel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelpilot.errors import UnsafeModel
from modelpilot.models.flavors.base import Predictor, TrustPolicy

_FILE = "model.skops"
_VOUCHABLE_PREFIX = "sklearn."


class SklearnFlavor:
    """Any ``sklearn.base.BaseEstimator`` (after the xgboost/lightgbm flavors had their turn)."""

    name = "sklearn"
    requirements = ("scikit-learn", "skops", "numpy", "scipy")

    def matches(self, model: object) -> bool:
        """True for scikit-learn estimators."""
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Dump with skops."""
        import skops.io

        path = folder / _FILE
        skops.io.dump(model, path)
        vouched = sorted(
            t for t in skops.io.get_untrusted_types(file=path) if t.startswith(_VOUCHABLE_PREFIX)
        )
        return {
            "file": _FILE,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "vouched_types": vouched,
        }

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Load with skops, refusing types the caller has not trusted."""
        import skops.io

        path = folder / meta.get("file", _FILE)
        untrusted = list(skops.io.get_untrusted_types(file=path))
        allowed = set(trust.trusted_types) | set(meta.get("vouched_types", []))
        refused = [t for t in untrusted if t not in allowed]
        if refused and not trust.allow_untrusted:
            raise UnsafeModel(
                f"Refusing to load {meta.get('class', 'the model')}: the file contains types that "
                f"are not trusted: {', '.join(refused)}. If you trust where this model came "
                f"from, pass trusted_types={refused!r} (or allow_untrusted=True).",
                field="trusted_types",
            )
        model = skops.io.load(path, trusted=untrusted)
        if not hasattr(model, "predict"):
            raise UnsafeModel(f"The stored object {type(model).__name__} has no predict method.")
        return model  # type: ignore[no-any-return]
