"""ONNX models run with ONNX Runtime: what ``modelpilot optimize --to onnx`` produces.

The package holds one ``.onnx`` file (a protobuf graph of standard operators: numbers, never
code) and, in the flavor's metadata, how the signature's columns become the graph's inputs:
either one float tensor with every column in signature order, or one ``[rows, 1]`` tensor per
column (float for numbers, string for text) when the graph selects columns by name. Loading
needs no trust decision: ONNX Runtime interprets the graph's operators and nothing else.

Numbers enter the graph as float32 (the type the ONNX-ML tree and imputer operators run in),
so probabilities differ from the float64 source in about the 7th digit; a value lying within
float32 rounding of a split threshold can take the other branch (docs/optimize.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.models.flavors.base import Predictor, TrustPolicy

_FILE = "model.onnx"


@dataclass(frozen=True)
class OnnxInput:
    """One graph input: its name, element type (``float`` or ``string``) and the columns it
    carries, in order."""

    name: str
    kind: str
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the flavor's metadata)."""
        return {"name": self.name, "kind": self.kind, "columns": list(self.columns)}

    def feed(self, frame: pd.DataFrame) -> np.ndarray:
        """This input's tensor from a batch DataFrame."""
        # selecting columns copies the frame (~100 us at one row): skip it when they match
        same = len(frame.columns) == len(self.columns) and all(frame.columns == self.columns)
        block = frame if same else frame[list(self.columns)]
        if self.kind == "string":
            values = block.to_numpy(dtype=object)
            missing = pd.isna(values)
            return np.where(missing, "", values.astype(str)).astype(object)
        return block.to_numpy(dtype=np.float32)


class OnnxPredictor:
    """``predict`` / ``predict_proba`` over an ONNX Runtime session, the source's interface.

    Built by :meth:`from_bytes`; ``classes_`` are the source's class labels (None for a
    regressor); probabilities come from the graph's second output, one column per class.
    """

    def __init__(
        self,
        session: Any,
        model_bytes: bytes,
        inputs: Sequence[OnnxInput],
        classes: Sequence[Any] | None,
        info: dict[str, Any],
    ) -> None:
        self.session = session
        self.model_bytes = model_bytes
        self.inputs = tuple(inputs)
        self.classes_ = None if classes is None else np.asarray(list(classes))
        self.info = info

    @classmethod
    def from_bytes(
        cls,
        model_bytes: bytes,
        inputs: Sequence[OnnxInput],
        classes: Sequence[Any] | None,
        info: dict[str, Any] | None = None,
    ) -> OnnxPredictor:
        """A predictor over a serialised graph (an ONNX Runtime session on the CPU)."""
        return cls(_session(model_bytes), model_bytes, inputs, classes, dict(info or {}))

    @functools.cached_property
    def _outputs(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    @property
    def takes_matrix(self) -> bool:
        """True when the graph takes one float tensor (so a numeric matrix feeds it)."""
        return len(self.inputs) == 1 and self.inputs[0].kind == "float"

    def _feeds(self, data: Any) -> dict[str, np.ndarray]:
        if isinstance(data, pd.DataFrame):
            return {i.name: i.feed(data) for i in self.inputs}
        matrix = np.asarray(data, dtype=np.float32)  # a matrix in signature order
        return {self.inputs[0].name: matrix}

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order."""
        proba = self.session.run([self._outputs[1]], self._feeds(data))[0]
        return np.asarray(proba, dtype=np.float64)

    def predict(self, data: Any) -> np.ndarray:
        """Class labels (the most probable class) or regression values."""
        if self.classes_ is not None:
            return np.asarray(self.classes_[np.argmax(self.predict_proba(data), axis=1)])
        if self.info.get("predicts") == "probabilities":  # a raw booster's classifier objective
            proba = np.asarray(self.predict_proba(data))
            return proba[:, 1] if proba.shape[1] == 2 else proba
        out = self.session.run([self._outputs[0]], self._feeds(data))[0]
        return np.asarray(out, dtype=np.float64).reshape(len(out), -1).squeeze(axis=1)

    def meta(self) -> dict[str, Any]:
        """What :class:`OnnxFlavor` stores beside the file."""
        return {
            "file": _FILE,
            "inputs": [i.to_dict() for i in self.inputs],
            "classes": None if self.classes_ is None else [_plain(c) for c in self.classes_],
            **self.info,
        }


def _session(model_bytes: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread per session: a call on a batch of 1 to 64 rows costs microseconds, less than
    # waking a thread pool; the data plane gets its parallelism from batching and replicas.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # LightGBM graphs declare a [1] label shape; ORT warns per call
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class OnnxFlavor:
    """Graphs made by ``modelpilot optimize`` (an :class:`OnnxPredictor`)."""

    name = "onnx"
    requirements = ("onnxruntime", "numpy")
    is_code_by_reference = False

    def matches(self, model: object) -> bool:
        """True for an :class:`OnnxPredictor`."""
        return isinstance(model, OnnxPredictor)

    def save(self, model: object, folder: Path) -> dict[str, Any]:
        """Write the graph and the input layout."""
        assert isinstance(model, OnnxPredictor)
        (folder / _FILE).write_bytes(model.model_bytes)
        return model.meta()

    def untrusted_types(self, folder: Path, meta: dict[str, Any]) -> list[str]:
        """Nothing: a graph of standard operators holds no code."""
        return []

    def load(self, folder: Path, meta: dict[str, Any], trust: TrustPolicy) -> Predictor:
        """An ONNX Runtime session over the stored graph."""
        inputs = [
            OnnxInput(str(i["name"]), str(i["kind"]), tuple(map(str, i["columns"])))
            for i in meta.get("inputs", [])
        ]
        info = {k: v for k, v in meta.items() if k not in ("file", "inputs", "classes")}
        model_bytes = (folder / meta.get("file", _FILE)).read_bytes()
        return OnnxPredictor.from_bytes(model_bytes, inputs, meta.get("classes"), info)
