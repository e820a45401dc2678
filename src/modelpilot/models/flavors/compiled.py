"""Tree ensembles compiled to a shared library: what ``modelpilot optimize --to compiled`` makes.

Treelite reads the trees, TL2cgen writes them as C (one ``if`` per split) and the machine's C
compiler builds ``model.so``; TL2cgen's runtime loads it and calls it. The package holds the
library and, in the flavor's metadata, the columns it takes (signature order), the classes,
whether inputs are rounded to float32 first (scikit-learn's forests and GradientBoosting
compare float32 features, so a value between a float32 and its float64 neighbour must take
the float32 branch) and the platform it was built on.

A shared library is code: loading it runs whatever its author compiled. So it loads only when
the loading side trusts it, as for python_function models: its sha256, computed here from the
bytes about to be loaded (never read from the package), must be on the version row
(``compiled:sha256:<hex>``, recorded by ``optimize``, which built it), or the caller passes
``trusted_code=True`` / ``allow_untrusted=True``. The verified bytes are copied to a private
file and loaded from there, so a file swapped in the shared cache after the check is never the
one loaded.

>>> trust_name("ab" * 32)
'compiled:sha256:abababababababababababababababababababababababababababababababab'
"""

from __future__ import annotations

import platform
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import sha256_bytes
from modelpilot.errors import InvalidInput, UnsafeModel
from modelpilot.models.flavors.base import Predictor, TrustPolicy

_FILE = "model.so"
TRUST_PREFIX = "compiled:sha256:"


def trust_name(digest: str) -> str:
    """What a version row records to trust the library with this sha256."""
    return f"{TRUST_PREFIX}{digest}"


def build_platform() -> str:
    """Where a library built here runs: ``linux-x86_64`` (OS and CPU architecture)."""
    return f"{sys.platform}-{platform.machine().lower()}"


class CompiledPredictor:
    """``predict`` / ``predict_proba`` over a compiled tree ensemble, the source's interface.

    Built by :meth:`from_library`. Takes a DataFrame (the signature's columns) or a numeric
    matrix in signature order; NaN is a missing value and follows each split's default branch,
    as in the source. ``classes_`` are the source's labels (None for a regressor).
    """

    def __init__(
        self,
        library: Any,
        library_bytes: bytes,
        columns: Sequence[str],
        classes: Sequence[Any] | None,
        info: dict[str, Any],
    ) -> None:
        self.library = library
        self.library_bytes = library_bytes
        self.columns = tuple(columns)
        self.classes_ = None if classes is None else np.asarray(list(classes))
        self.info = info
        self.digest = sha256_bytes(library_bytes)
        self.takes_matrix = True  # one matrix in signature order, like a one-tensor ONNX graph
        # TL2cgen: "predict may be called by only one thread at a time".
        self._lock = threading.Lock()
        self._dtype = np.float32 if library.threshold_type == "float32" else np.float64

    @classmethod
    def from_library(
        cls,
        library_bytes: bytes,
        columns: Sequence[str],
        classes: Sequence[Any] | None,
        info: dict[str, Any] | None = None,
    ) -> CompiledPredictor:
        """Load ``library_bytes`` (already trusted by the caller) from a private copy."""
        return cls(_open(library_bytes), library_bytes, columns, classes, dict(info or {}))

    @property
    def trusted_types(self) -> tuple[str, ...]:
        """What a version row records to load this library: its digest (the builder, who
        holds the bytes it compiled, vouches for them)."""
        return (trust_name(self.digest),)

    @property
    def rounds_to_float32(self) -> bool:
        """True when inputs are rounded to float32 before the splits, as the source does."""
        return bool(self.info.get("round_float32", False))

    def _matrix(self, data: Any) -> np.ndarray:
        if isinstance(data, pd.DataFrame):
            same = len(data.columns) == len(self.columns) and all(data.columns == self.columns)
            block = data if same else data[list(self.columns)]
            matrix = block.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            matrix = np.asarray(data, dtype=np.float64)
        if self.rounds_to_float32:
            matrix = matrix.astype(np.float32)
        return np.ascontiguousarray(matrix, dtype=self._dtype)

    def _raw(self, data: Any) -> np.ndarray:
        import tl2cgen

        matrix = self._matrix(data)
        with self._lock:
            out = self.library.predict(tl2cgen.DMatrix(matrix))
        return np.asarray(out, dtype=np.float64).reshape(len(matrix), -1)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order."""
        out = self._raw(data)
        return np.column_stack([1.0 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out

    def predict(self, data: Any) -> np.ndarray:
        """Class labels (the most probable class) or regression values."""
        if self.classes_ is not None:
            return np.asarray(self.classes_[np.argmax(self.predict_proba(data), axis=1)])
        out = self._raw(data)
        return out[:, 0] if out.shape[1] == 1 else out

    def meta(self) -> dict[str, Any]:
        """What :class:`CompiledFlavor` stores beside the library."""
        return {
            "file": _FILE,
            "columns": list(self.columns),
            "classes": None if self.classes_ is None else [_plain(c) for c in self.classes_],
            **self.info,
        }


def _open(library_bytes: bytes) -> Any:
    """TL2cgen's predictor over a private copy of the bytes, one thread (see the onnx flavor:
    a call on 1 to 64 rows costs microseconds, less than waking a thread pool)."""
    import tl2cgen

    with tempfile.TemporaryDirectory(prefix="modelpilot-compiled-") as tmp:
        path = Path(tmp) / _FILE
        path.write_bytes(library_bytes)
        try:
            # Once loaded, the mapping outlives the file (POSIX): the folder can go.
            return tl2cgen.Predictor(path, nthread=1)
        except tl2cgen.TL2cgenError as exc:
            raise InvalidInput(
                f"The package's library is not a model TL2cgen can call: {str(exc)[:300]}. "
                "Re-run modelpilot optimize --to compiled on the source version.",
                field="model",
            ) from exc


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class CompiledFlavor:
    """Shared libraries made by ``modelpilot optimize --to compiled`` (a
    :class:`CompiledPredictor`)."""

    name = "compiled"
    requirements = ("tl2cgen", "numpy")
    is_code_by_reference = False

    def matches(self, model: object) -> bool:
        """True for a :class:`CompiledPredictor`."""
        return isinstance(model, CompiledPredictor)

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Write the library and what reading its output needs."""
        assert isinstance(model, CompiledPredictor)
        (folder / _FILE).write_bytes(model.library_bytes)
        return model.meta()

    def untrusted_types(self, folder: Path, meta: dict[str, Any]) -> list[str]:
        """The library itself, named by its sha256: loading it runs its code."""
        data = (folder / meta.get("file", _FILE)).read_bytes()
        return [trust_name(sha256_bytes(data))]

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """Load the library if the loading side trusts its digest (see the module doc)."""
        data = (folder / meta.get("file", _FILE)).read_bytes()
        name = trust_name(sha256_bytes(data))
        if not trust.trusted_code and trust.refused([name]):
            raise UnsafeModel(
                "compiled models are native code, and this library "
                f"({name}) is not trusted: trusted are the libraries recorded on the version "
                "by modelpilot optimize, which built them (never a list inside the package). "
                "If you trust where it came from, pass trusted_code=True to load_model.",
                field="trusted_code",
            )
        built_on = str(meta.get("platform", "unknown"))
        if built_on != build_platform():
            raise InvalidInput(
                f"This compiled model was built for {built_on}; this machine is "
                f"{build_platform()}. A shared library runs only where it was compiled: run "
                "modelpilot optimize --to compiled on the serving platform, or serve the "
                "source or its onnx candidate.",
                field="platform",
            )
        info = {k: v for k, v in meta.items() if k not in ("file", "columns", "classes")}
        columns = [str(c) for c in meta.get("columns", [])]
        return CompiledPredictor.from_library(data, columns, meta.get("classes"), info)
