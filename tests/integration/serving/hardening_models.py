"""Importable model code for the HTTP hardening tests (the server process imports it by name)."""

from __future__ import annotations

from typing import Any


class ReturnsScalar:
    """A python_function model that answers one number for a whole batch: a broken contract
    that surfaces after the model returns, outside the predict call's own error handling."""

    def predict(self, frame: Any) -> float:
        return 1.0
