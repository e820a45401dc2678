"""The Flavor seam: how one kind of model is saved, loaded and asked for predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TrustPolicy:
    """What the caller allows a load to construct beyond the flavor's safe defaults.

    ``trusted_types`` names extra types (``"numpy.log1p"``) a skops file may contain;
    ``allow_untrusted`` accepts anything, the explicit opt-in for files you made yourself.
    """

    trusted_types: Sequence[str] = field(default_factory=tuple)
    allow_untrusted: bool = False


@runtime_checkable
class Predictor(Protocol):
    """What a loaded model offers: ``predict`` always; ``predict_proba`` for classifiers."""

    def predict(self, data: Any) -> Any:
        """Predictions for a batch."""
        ...


class Flavor(Protocol):
    """Save/load for one family of models, in that family's native, non-pickle format."""

    @property
    def name(self) -> str:
        """The flavor's registered name (stored in each package)."""
        ...

    @property
    def requirements(self) -> tuple[str, ...]:
        """Distributions a package of this flavor needs at load time."""
        ...

    def matches(self, model: object) -> bool:
        """True when this flavor knows how to save ``model``."""
        ...

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Write the model's files into ``folder``; return metadata needed to load it."""
        ...

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Rebuild a predictor from files written by :meth:`save`."""
        ...


def class_labels(model: object) -> list[Any] | None:
    """The fitted classes of a classifier, or None for regressors and transformers."""
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        return None
    return [c.item() if hasattr(c, "item") else c for c in list(classes)]
