"""Per-column statistics of a stored dataset version, read in streamed batches.

What a model's input domain needs from its training data (see
:class:`modelpilot.models.signature.InputDomain`): the finite min and max of number columns,
the distinct values of category columns (up to a limit), and how many values are missing.
Only the named columns are read, in record batches of :data:`BATCH_ROWS`, so memory stays
bounded by one batch (plus the Parquet blob of a version stored by value, which was a
DataFrame in memory when it was logged) and time by :data:`MAX_ROWS`: a larger dataset is
summarised from its first ``MAX_ROWS`` rows, which ``ColumnStats.rows`` reports.

Measured (CPU time, pyarrow 23, shared machine): 1,000,000 rows of 20 float columns and 2
string columns (300 distinct values) stored by value, ~0.7 s.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelpilot.artifacts import ArtifactStore
from modelpilot.data.entities import DatasetVersion
from modelpilot.data.service import checked_file
from modelpilot.tables import TableKind, delimiter, is_gzip, table_kind, text_stream

ColumnKind = Literal["number", "category", "other"]
BATCH_ROWS = 65_536
MAX_ROWS = 10_000_000  # bounded time: ~7 s at the rate above for 22 columns


@dataclass(frozen=True)
class ColumnStats:
    """One column over the rows read: ``low``/``high`` for numbers (None when no finite
    value), ``values`` for categories (None when more than the limit, or not a category)."""

    rows: int
    nulls: int  # missing values, NaN included
    low: float | None = None
    high: float | None = None
    values: frozenset[str] | None = None

    def merge(self, other: ColumnStats) -> ColumnStats:
        """The statistics of both sets of rows together (several training datasets)."""
        lows = [v for v in (self.low, other.low) if v is not None]
        highs = [v for v in (self.high, other.high) if v is not None]
        values = None
        if self.values is not None and other.values is not None:
            values = self.values | other.values
        return ColumnStats(
            self.rows + other.rows,
            self.nulls + other.nulls,
            min(lows) if lows else None,
            max(highs) if highs else None,
            values,
        )


def column_stats(
    artifacts: ArtifactStore,
    version: DatasetVersion,
    columns: Mapping[str, ColumnKind],
    *,
    max_values: int = 1000,
    max_rows: int = MAX_ROWS,
) -> dict[str, ColumnStats]:
    """Statistics of those ``columns`` the dataset has (absent ones are left out).

    A column whose values cannot be read as its kind (text in a number column) is left out
    too: the caller knows nothing about it from this dataset.

    >>> import pandas as pd
    >>> from modelpilot.artifacts.local import LocalArtifactStore
    >>> from modelpilot.data.service import frame_version
    >>> import tempfile, pathlib
    >>> blobs = LocalArtifactStore(pathlib.Path(tempfile.mkdtemp()))
    >>> frame = pd.DataFrame({"age": [20, 60, None], "plan": ["a", "b", "a"]})
    >>> stats = column_stats(blobs, frame_version(blobs, frame, "t", None),
    ...                      {"age": "number", "plan": "category", "city": "category"})
    >>> stats["age"], sorted(stats["plan"].values), "city" in stats
    (ColumnStats(rows=3, nulls=1, low=20.0, high=60.0, values=None), ['a', 'b'], False)
    """
    accumulators: dict[str, _Accumulator] = {}
    for batch in _batches(artifacts, version, columns):
        for name in batch.schema.names:
            if name not in columns:
                continue
            acc = accumulators.setdefault(name, _Accumulator(columns[name], max_values))
            acc.add(batch.column(name))
        if all(a.rows >= max_rows for a in accumulators.values()):
            break
    return {name: acc.stats() for name, acc in accumulators.items() if acc.readable}


class _Accumulator:
    """Running statistics of one column over record batches."""

    def __init__(self, kind: ColumnKind, max_values: int) -> None:
        self.kind = kind
        self.max_values = max_values
        self.rows = 0
        self.nulls = 0
        self.low: float | None = None
        self.high: float | None = None
        self.values: set[str] | None = set() if kind == "category" else None
        self.readable = True

    def add(self, array: pa.Array) -> None:
        self.rows += len(array)
        self.nulls += array.null_count
        if not self.readable or self.kind == "other":
            return
        try:
            if self.kind == "number":
                self._add_numbers(pc.cast(array, pa.float64()))
            elif self.values is not None:
                self._add_values(pc.cast(array, pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            self.readable = False

    def _add_numbers(self, numbers: pa.Array) -> None:
        self.nulls += int(pc.sum(pc.is_nan(numbers)).as_py() or 0)
        finite = pc.filter(numbers, pc.is_finite(numbers))
        if len(finite):
            bounds = pc.min_max(finite)
            low, high = float(bounds["min"].as_py()), float(bounds["max"].as_py())
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)

    def _add_values(self, strings: pa.Array) -> None:
        assert self.values is not None
        self.values.update(v for v in pc.unique(strings.drop_null()).to_pylist())
        if len(self.values) > self.max_values:  # free text: no set kept, stop collecting
            self.values = None

    def stats(self) -> ColumnStats:
        values = None if self.values is None else frozenset(self.values)
        return ColumnStats(self.rows, self.nulls, self.low, self.high, values)


def _batches(
    artifacts: ArtifactStore, version: DatasetVersion, columns: Mapping[str, ColumnKind]
) -> Iterator[pa.RecordBatch]:
    if version.storage == "parquet":
        source = pa.BufferReader(artifacts.get_bytes(version.location))
        yield from _parquet_batches(pq.ParquetFile(source), columns)
        return
    path = checked_file(version)
    kind = table_kind(path)
    if kind == "parquet":
        yield from _parquet_batches(pq.ParquetFile(path), columns)
    else:
        yield from _csv_batches(path, kind or "csv", columns)


def _parquet_batches(
    file: pq.ParquetFile, columns: Mapping[str, ColumnKind]
) -> Iterator[pa.RecordBatch]:
    present = [name for name in file.schema_arrow.names if name in columns]
    if present:
        yield from file.iter_batches(batch_size=BATCH_ROWS, columns=present)


def _csv_batches(
    path: Path, kind: TableKind, columns: Mapping[str, ColumnKind]
) -> Iterator[pa.RecordBatch]:
    """CSV/TSV read as text (types inferred from its first block could disagree with a later
    one); number columns are cast per batch, so a non-number marks the column unreadable."""
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rt", newline="") as handle:
        header: Sequence[str] = next(csv.reader(handle, delimiter=delimiter(kind)), [])
    present = [name for name in header if name in columns]
    if not present:
        return
    options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(present, pa.string()),
        include_columns=present,
        strings_can_be_null=True,
    )
    parse = pacsv.ParseOptions(delimiter=delimiter(kind))
    with pacsv.open_csv(text_stream(path), parse_options=parse, convert_options=options) as reader:
        yield from reader
