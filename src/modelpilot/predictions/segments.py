"""Writing Parquet segments atomically: temporary name, fsync, rename, fsync the folder."""

from __future__ import annotations

import os
import secrets
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modelpilot.clock import now_ms
from modelpilot.predictions.batch import LogBatch
from modelpilot.predictions.files import fsync_dir, private_file, safe_name


def write_segments(folder: Path, batches: list[LogBatch], *, name: str | None = None) -> int:
    """Write batches as one Parquet segment per model (atomically); returns rows written.

    Batches of one model may differ in columns (another version's inputs): the segment holds
    the union, with nulls where a batch had no such column. ``name`` fixes the file name (a
    WAL file's conversion uses one derived from the WAL's, so converting it twice, after a
    crash between writing and deleting, replaces rather than duplicates); by default it is
    random, so processes sharing the folder never pick the same one.
    """
    by_model: dict[str, list[LogBatch]] = defaultdict(list)
    for batch in batches:
        by_model[batch.model].append(batch)
    segment = name or f"seg-{now_ms()}-{secrets.token_hex(8)}.parquet"
    for model, model_batches in by_model.items():
        target_dir = folder / safe_name(model)
        target_dir.mkdir(parents=True, exist_ok=True)
        tmp = target_dir / f".{segment}.{secrets.token_hex(4)}.tmp"
        tables = [b.table() for b in _merged(model_batches)]
        table = pa.concat_tables(tables, promote_options="permissive")
        with private_file(tmp) as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target_dir / segment)
        fsync_dir(target_dir)
    return sum(b.size for b in batches)


def _merged(batches: list[LogBatch]) -> list[LogBatch]:
    """Batches with the same columns joined into one (an Arrow table per batch costs ~100 us;
    a second's worth of one-row batches would otherwise cost a tenth of a core)."""
    groups: dict[tuple[str, ...], list[LogBatch]] = defaultdict(list)
    for batch in batches:
        groups[tuple(batch.columns)].append(batch)
    merged = []
    for names, group in groups.items():
        columns: dict[str, Any] = {}
        for name in names:
            parts = [b.columns[name] for b in group]
            if all(isinstance(p, np.ndarray) for p in parts):
                columns[name] = np.concatenate(parts)
            else:
                columns[name] = [v for p in parts for v in _as_list(p)]
        merged.append(LogBatch(group[0].model, sum(b.size for b in group), columns))
    return merged


def _as_list(values: Any) -> list[Any]:
    return list(values.tolist()) if isinstance(values, np.ndarray) else list(values)
