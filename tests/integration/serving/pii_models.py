"""Importable model code for the PII tests (the server process imports it by name)."""

from __future__ import annotations

from typing import Any

import numpy as np


class OlderThanForty:
    """A python_function classifier over a frame with personal columns: 1 when age > 40."""

    def predict(self, frame: Any) -> np.ndarray:
        return np.asarray((frame["age"] > 40).astype(np.int64))
