"""The dataset seam: one typed interface, a local and an HTTP implementation.

``mp.log_dataset``/``get_dataset``/``load_dataset`` go through :class:`DatasetService`, so
the same code runs in-process (:class:`~modelpilot.data.local.LocalDatasets`) or against
``modelpilot server`` (``modelpilot.client.HttpDatasets``): the client describes the data and
uploads its Parquet bytes, the server records the version.
tests/contract/test_registry_service_contract.py runs one suite against every implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from modelpilot.data.entities import DatasetVersion


@runtime_checkable
class DatasetService(Protocol):
    """What the SDK's dataset calls need, and nothing more."""

    def log_dataset(
        self,
        data: pd.DataFrame | str | Path,
        name: str,
        *,
        source: str | None = None,
        risks: dict[str, Any] | None = None,
    ) -> DatasetVersion:
        """Version a DataFrame (stored as Parquet) or a file (by reference); the same content
        twice is the same version. ``risks`` (a ``DataRisks.to_dict()``) is kept as
        ``profile["risks"]``, replacing an earlier assessment of the same version."""

    def get_dataset(self, ref: str) -> DatasetVersion:
        """``name@version`` (a prefix of the content hash) or ``name`` (the newest)."""

    def list_datasets(self) -> list[DatasetVersion]:
        """Every dataset version, newest first."""

    def load_dataset(self, ref: str) -> pd.DataFrame:
        """A version's rows, verified against its hash."""

    def record_input(self, run_id: str, name: str, digest: str, role: str) -> None:
        """Record that a run consumed a dataset version (idempotent)."""


__all__ = ["DatasetService"]
