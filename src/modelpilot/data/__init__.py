"""Dataset versions: content hash, Parquet storage or reference, schema, profile, lineage.

Owns what a dataset version is and how it is stored; never touches model code.
"""

from __future__ import annotations

from modelpilot.data.entities import DatasetVersion
from modelpilot.data.service import get_dataset, list_datasets, load_dataset, log_dataset

__all__ = ["DatasetVersion", "get_dataset", "list_datasets", "load_dataset", "log_dataset"]
