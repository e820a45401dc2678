"""Test doubles for the data plane: real ModelRuntime objects around tiny in-memory predictors."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.models import LoadedModel
from modelpilot.models.signature import ColumnSpec, Signature
from modelpilot.serving.runtime import ModelRuntime

SIGNATURE = Signature(
    "columns",
    inputs=(ColumnSpec("age", "int64"), ColumnSpec("income", "float64", nullable=True)),
    output_dtype="float64",
)


class Doubler:
    """Predicts ``2 * age``; records every batch size; raises on negative ages."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.lock = threading.Lock()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        with self.lock:
            self.batch_sizes.append(len(frame))
        if (frame["age"] < 0).any():
            raise RuntimeError("negative age")
        return np.asarray(frame["age"] * 2.0)


def runtime(predictor: Any | None = None, name: str = "m", version: int = 1) -> ModelRuntime:
    """A runtime over ``predictor`` (a fresh Doubler by default) with :data:`SIGNATURE`."""
    model = LoadedModel(
        predictor or Doubler(), SIGNATURE, {"flavor": "python_function"}, name=name, version=version
    )
    return ModelRuntime(name, version, model)
