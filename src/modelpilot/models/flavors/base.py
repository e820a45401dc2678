"""The Flavor seam: how one kind of model is saved, loaded and asked for predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TrustPolicy:
    """What a load may construct beyond the flavor's safe defaults, decided by the loader.

    Built by the loading side from the caller's flags and the types the registry recorded on
    the version at registration; never from the package, whose author controls its content.
    ``trusted_types`` names extra types (``"_operator.neg"``) a skops file may contain, or
    the import path (``"mymodels:score"``) of a python_function model, or the digest of a
    compiled model's library (``"compiled:sha256:<hex>"``); ``trusted_code`` allows
    python_function models to import and call the code they name and compiled models to load
    their library; ``allow_untrusted``
    accepts anything, the explicit opt-in for files you made yourself.

    >>> TrustPolicy(["_operator.neg"]).refused(["_operator.neg", "posix.system"])
    ['posix.system']
    """

    trusted_types: Sequence[str] = field(default_factory=tuple)
    allow_untrusted: bool = False
    trusted_code: bool = False

    def refused(self, names: Sequence[str]) -> list[str]:
        """The names in ``names`` this policy does not trust."""
        if self.allow_untrusted:
            return []
        trusted = set(self.trusted_types)
        return [n for n in names if n not in trusted]


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

    @property
    def is_code_by_reference(self) -> bool:
        """True when a package names code to import (logging the object vouches for it)."""
        ...

    def matches(self, model: object) -> bool:
        """True when this flavor knows how to save ``model``."""
        ...

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Write the model's files into ``folder``; return metadata needed to load it."""
        ...

    def untrusted_types(self, folder: Path, meta: dict[str, Any]) -> list[str]:
        """What loading these files needs trusted beyond the flavor's own safe list."""
        ...

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Rebuild a predictor from :meth:`save`'s files; refuse what ``trust`` does not cover.

        A refusal raises :class:`~modelpilot.errors.UnsafeModel` before anything untrusted
        is constructed.
        """
        ...


def class_labels(model: object) -> list[Any] | None:
    """The fitted classes of a classifier, or None for regressors and transformers."""
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        return None
    return [c.item() if hasattr(c, "item") else c for c in list(classes)]
