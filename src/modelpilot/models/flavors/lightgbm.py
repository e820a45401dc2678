"""LightGBM models in LightGBM's text format (no pickle).

The scikit-learn wrappers cannot be rebuilt from the text file, so a loaded classifier is a
small adapter over the Booster that keeps ``classes_``, ``predict`` and ``predict_proba``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.models.flavors.base import Predictor, TrustPolicy, class_labels

_FILE = "model.txt"


class LightGBMClassifierAdapter:
    """``predict``/``predict_proba`` over a Booster trained by ``LGBMClassifier``."""

    def __init__(self, booster: Any, classes: list[Any]) -> None:
        self.booster = booster
        self.classes_ = np.asarray(classes)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, one column per class."""
        raw = np.asarray(self.booster.predict(data))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else np.asarray(raw)

    def predict(self, data: Any) -> np.ndarray:
        """The most probable class label."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(data), axis=1)])


class LightGBMRegressorAdapter:
    """``predict`` over a Booster (regression, ranking or a raw Booster)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, data: Any) -> np.ndarray:
        """Raw booster output."""
        return np.asarray(self.booster.predict(data))


class LightGBMFlavor:
    """``lightgbm.LGBMModel`` wrappers and raw ``Booster`` objects."""

    name = "lightgbm"
    requirements = ("lightgbm", "numpy", "scikit-learn")
    is_code_by_reference = False

    def matches(self, model: object) -> bool:
        """True for LightGBM estimators and boosters."""
        return type(model).__module__.startswith("lightgbm")

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Save the booster as text, plus the classes for classifiers."""
        booster: Any = getattr(model, "booster_", model)
        booster.save_model(str(folder / _FILE))
        return {"file": _FILE, "class": type(model).__name__, "classes": class_labels(model)}

    def untrusted_types(self, folder: Path, meta: dict[str, Any]) -> list[str]:
        """Nothing: the native format holds numbers and trees, never code."""
        return []

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Load the booster and wrap it."""
        import lightgbm

        booster = lightgbm.Booster(model_file=str(folder / meta.get("file", _FILE)))
        if meta.get("classes") is not None:
            return LightGBMClassifierAdapter(booster, meta["classes"])
        return LightGBMRegressorAdapter(booster)
