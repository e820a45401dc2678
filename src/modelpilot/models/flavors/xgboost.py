"""XGBoost models in XGBoost's own UBJSON format (no pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.models.flavors.base import Predictor, TrustPolicy

_FILE = "model.ubj"
_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


class _BoosterPredictor:
    """Gives a raw ``xgboost.Booster`` the ``predict(X)`` every flavor offers."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, data: Any) -> np.ndarray:
        import xgboost

        return np.asarray(self.booster.predict(xgboost.DMatrix(data)))


class XGBoostFlavor:
    """``xgboost.XGBModel`` wrappers and raw ``Booster`` objects."""

    name = "xgboost"
    requirements = ("xgboost", "numpy", "scikit-learn")
    is_code_by_reference = False

    def matches(self, model: object) -> bool:
        """True for XGBoost estimators and boosters."""
        module = type(model).__module__
        return module.startswith("xgboost")

    def predictor_for(self, model: object) -> object:
        """What serving will call ``predict`` on, from the object being logged: a raw Booster
        predicts on a ``DMatrix`` only, so it is tried (input example, nullable columns)
        through the same adapter its loaded package gets."""
        import xgboost

        return _BoosterPredictor(model) if isinstance(model, xgboost.Booster) else model

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Save with ``save_model`` in UBJSON."""
        model.save_model(str(folder / _FILE))  # type: ignore[attr-defined]
        return {"file": _FILE, "class": type(model).__name__}

    def untrusted_types(self, folder: Path, meta: dict[str, Any]) -> list[str]:
        """Nothing: the native format holds numbers and trees, never code."""
        return []

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Rebuild the same wrapper class and load the booster into it."""
        import xgboost

        cls_name = meta.get("class", "Booster")
        path = str(folder / meta.get("file", _FILE))
        if cls_name in _WRAPPERS:
            model = getattr(xgboost, cls_name)()
            model.load_model(path)
            return model  # type: ignore[no-any-return]
        booster = xgboost.Booster()
        booster.load_model(path)
        return _BoosterPredictor(booster)
