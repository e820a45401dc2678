"""A model ready to serve: its validator, and one predict call per batch of rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.models import LoadedModel
from modelpilot.serving.validation import RequestValidator, Row

_NUMERIC = ("float64", "float32", "int64", "int32")


@dataclass(frozen=True)
class BatchOutput:
    """Predictions for a batch, row-aligned with its input rows."""

    predictions: np.ndarray
    probabilities: np.ndarray | None


@dataclass
class ModelRuntime:
    """One loaded model version in the server."""

    name: str
    version: int
    model: LoadedModel
    validator: RequestValidator = field(init=False)
    all_numeric: bool = field(init=False)

    def __post_init__(self) -> None:
        self.validator = RequestValidator(self.model.signature)
        self.all_numeric = all(s.dtype in _NUMERIC for s in self.model.signature.inputs)

    @property
    def key(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"

    @property
    def classes(self) -> list[Any] | None:
        """Class labels of a classifier."""
        return self.model.classes

    def frame(self, rows: list[Row]) -> pd.DataFrame:
        """The batch as the DataFrame the model was trained on (built once per batch)."""
        specs = self.model.signature.inputs
        names = [s.name for s in specs]
        if self.all_numeric:
            matrix = np.array(rows, dtype=np.float64)
            frame = pd.DataFrame(matrix, columns=names, copy=False)
            ints = [s.name for s in specs if s.dtype.startswith("int")]
            return frame.astype({n: "int64" for n in ints}) if ints else frame
        columns = list(zip(*rows, strict=True))
        data: dict[str, Any] = {}
        for spec, values in zip(specs, columns, strict=True):
            if spec.dtype in _NUMERIC:
                data[spec.name] = np.asarray(values, dtype=spec.dtype)
            elif spec.dtype == "bool":
                data[spec.name] = np.asarray(values, dtype=bool)
            elif spec.dtype == "datetime":
                data[spec.name] = pd.to_datetime(pd.Series(values), utc=True)
            else:
                data[spec.name] = np.asarray(values, dtype=object)
        return pd.DataFrame(data)

    def predict_rows(self, rows: list[Row]) -> BatchOutput:
        """One predict (and predict_proba for classifiers) for the whole batch."""
        inputs = self.frame(rows)
        if self.model.signature.is_classifier:
            proba = self.model.predict_proba_prepared(inputs)
            classes = np.asarray(self.model.classes)
            return BatchOutput(classes[np.argmax(proba, axis=1)], proba)
        return BatchOutput(self.model.predict_prepared(inputs), None)
