"""``LocalDatasets``: the dataset service in-process, over :mod:`modelpilot.data.service`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot.artifacts import ArtifactStore
from modelpilot.data import service
from modelpilot.data.entities import DatasetVersion
from modelpilot.store import Store
from modelpilot.tracking import service as tracking_service


class LocalDatasets:
    """Datasets on a store and an artifact store in this process."""

    def __init__(self, store: Store, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def log_dataset(
        self,
        data: pd.DataFrame | str | Path,
        name: str,
        *,
        source: str | None = None,
        risks: dict[str, Any] | None = None,
    ) -> DatasetVersion:
        """Version a DataFrame or a file (with its data risks, if assessed)."""
        return service.log_dataset(
            self.store, self.artifacts, data, name, source=source, risks=risks
        )

    def get_dataset(self, ref: str) -> DatasetVersion:
        """A version by reference."""
        return service.get_dataset(self.store, ref)

    def list_datasets(self) -> list[DatasetVersion]:
        """Every version, newest first."""
        return service.list_datasets(self.store)

    def load_dataset(self, ref: str) -> pd.DataFrame:
        """A version's rows."""
        return service.load_dataset(self.store, self.artifacts, ref)

    def record_input(self, run_id: str, name: str, digest: str, role: str) -> None:
        """Record a run's input."""
        tracking_service.record_input(self.store, run_id, name, digest, role)
