"""One predict call's log rows, column by column: what the data plane hands the writer."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

LogRow = dict[str, Any]


@dataclass(frozen=True)
class LogBatch:
    """One predict call's log rows for one model, column by column.

    Built on the hot path, so it is made of what the batch already has: NumPy arrays for
    numbers (inputs, predictions, probabilities) and lists for ids. Column-wise, a batch of 32
    rows costs tens of microseconds to record and turns into Arrow without per-value work;
    a dict per row cost ~10 us a row plus a GIL-bound conversion at every flush, which showed
    as 40 ms p99 spikes under load (benchmarks/serving.py).
    """

    model: str
    size: int
    columns: dict[str, Any]  # name -> list or 1-D array of ``size`` values

    @staticmethod
    def from_rows(rows: list[LogRow]) -> list[LogBatch]:
        """Row dicts (``model`` in each) as one batch per model; absent keys become nulls."""
        by_model: dict[str, list[LogRow]] = defaultdict(list)
        for row in rows:
            by_model[str(row["model"])].append(row)
        batches = []
        for model, model_rows in by_model.items():
            names = list(dict.fromkeys(k for r in model_rows for k in r if k != "model"))
            columns = {n: [r.get(n) for r in model_rows] for n in names}
            batches.append(LogBatch(model, len(model_rows), columns))
        return batches

    def table(self) -> pa.Table:
        """The batch as an Arrow table, ``model`` column included."""
        columns = {"model": pa.array([self.model] * self.size, pa.string()), **self.columns}
        return pa.table(columns)

    def wal_line(self) -> bytes:
        """One JSON line for the write-ahead file (NumPy arrays serialised natively)."""
        columns = {name: _jsonable(values) for name, values in self.columns.items()}
        doc = {"model": self.model, "size": self.size, "columns": columns}
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def _jsonable(values: Any) -> Any:
    """orjson writes contiguous numeric arrays itself; anything else goes as a list."""
    if isinstance(values, np.ndarray) and (
        values.dtype.kind not in "biuf" or not values.flags.c_contiguous
    ):
        return values.tolist()
    return values
