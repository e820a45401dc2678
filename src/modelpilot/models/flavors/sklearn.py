"""scikit-learn estimators and pipelines, saved with skops (never plain pickle).

On load, skops lists every type in the file that is not on its trusted list. Types from
scikit-learn itself are trusted here (building them runs no caller code); anything else, a
numpy function inside a FunctionTransformer say, must be named by the caller or the load
fails with :class:`~modelpilot.errors.UnsafeModel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelpilot.errors import UnsafeModel
from modelpilot.models.flavors.base import Predictor, TrustPolicy

_FILE = "model.skops"
_SAFE_PREFIXES = ("sklearn.",)


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

        skops.io.dump(model, folder / _FILE)
        return {"file": _FILE, "class": f"{type(model).__module__}.{type(model).__qualname__}"}

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Load with skops, refusing types the caller has not trusted."""
        import skops.io

        path = folder / meta.get("file", _FILE)
        untrusted = list(skops.io.get_untrusted_types(file=path))
        allowed = set(trust.trusted_types)
        refused = [t for t in untrusted if not t.startswith(_SAFE_PREFIXES) and t not in allowed]
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
