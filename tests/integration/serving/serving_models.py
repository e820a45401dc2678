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


class DiesOnAgeMinusOne:
    """A python_function model whose process dies (no exception, no cleanup) on age -1: a
    scoring worker lost mid-job."""

    def predict(self, frame: Any) -> np.ndarray:
        if (frame["age"] == -1).any():
            import os

            os._exit(17)
        return np.asarray(frame["age"] * 2.0)
