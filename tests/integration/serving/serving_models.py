"""Importable model code for server tests (the server process imports it by name)."""

from __future__ import annotations

from typing import Any

import numpy as np


class FailsOnNegativeAge:
    """A python_function model that raises for age < 0, so one request can make it fail."""

    def predict(self, frame: Any) -> np.ndarray:
        if (frame["age"] < 0).any():
            raise RuntimeError("age must not be negative")
        return np.asarray(frame["age"] * 2.0)
