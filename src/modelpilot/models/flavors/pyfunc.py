"""Plain Python functions and objects, stored by reference to their import path.

No code is serialised: the package records ``module:qualname`` and loading imports it, so
the function must live in an installed, importable module (not in ``__main__``, not a lambda).
Importing and calling a path named by a package is running its author's choice of code, so
loading is an explicit opt-in: ``trusted_code=True``, or the path recorded on the version row
when the caller logged the object itself with ``mp.log_model``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.errors import InvalidInput, NotFound, UnsafeModel, shown
from modelpilot.models.flavors.base import Predictor, TrustPolicy


class _FunctionPredictor:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(self.fn(data))


class PythonFunctionFlavor:
    """A module-level function ``f(batch) -> predictions`` or a class with ``predict``."""

    name = "python_function"
    requirements = ("numpy", "pandas")
    is_code_by_reference = True

    def matches(self, model: object) -> bool:
        """True for functions and for classes/instances defined at module level."""
        return callable(model) or hasattr(model, "predict")

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Record the import path; refuse what cannot be imported again."""
        target = model if callable(model) and not hasattr(model, "predict") else type(model)
        module = getattr(target, "__module__", None)
        qualname = getattr(target, "__qualname__", "")
        if module in (None, "__main__") or "<" in qualname:
            raise InvalidInput(
                f"Cannot package {qualname or type(model).__name__!r} from module {module!r}: "
                "python_function models are stored by import path, so define the function "
                "(or class) at the top level of an importable module, not in __main__, a "
                "notebook cell or a lambda.",
                field="model",
            )
        kind = "function" if target is model else "instance"
        return {"callable": f"{module}:{qualname}", "kind": kind}

    def untrusted_types(self, folder: Path, meta: dict[str, Any]) -> list[str]:
        """The import path: loading runs whatever it names."""
        return [str(meta["callable"])]

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Import the recorded object (instances are rebuilt with no arguments), if trusted."""
        if not trust.trusted_code and trust.refused(self.untrusted_types(folder, meta)):
            raise UnsafeModel(
                f"python_function models import and call code by path, and this one names "
                f"{shown(meta.get('callable'))}. It loads only when trusted: pass "
                "trusted_code=True to load_model if you trust where it came from, or log the "
                "object yourself with mp.log_model, which records that decision on the version.",
                field="trusted_code",
            )
        module_name, _, qualname = str(meta["callable"]).partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise NotFound(
                f"Cannot import {meta['callable']!r} for this python_function model: {exc}. "
                "Install the package that defines it.",
            ) from exc
        if meta.get("kind") == "instance":
            return target()  # type: ignore[no-any-return]
        return _FunctionPredictor(target)
