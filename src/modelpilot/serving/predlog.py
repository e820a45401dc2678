"""The prediction log: every request and response, off the hot path, as Parquet segments.

Rows are typed per model (``in.<column>``, ``out.prediction``, ``out.proba.<class>``) so
monitoring can read features directly; DuckDB reads all segments as one ``predictions`` view.

Durability:
* ``async``: rows collect in memory and a flusher thread writes a Parquet segment every
  ``flush_interval_s``; a crash loses at most that interval.
* ``sync``: each batch's rows are appended to this process's write-ahead file and fsynced
  *before* the batch's responses are released (group commit). The flusher turns closed WAL
  files into Parquet segments; on start-up, WAL files of dead processes are recovered. So no
  response a client received is missing from the log, even after SIGKILL.

Segments are written to a temporary name, fsynced and renamed, so readers never see half a file.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelpilot.clock import now_ms, since_ms
from modelpilot.errors import InvalidInput, NotFound

LogRow = dict[str, Any]
_SEQ = itertools.count()


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


class PredictionLog:
    """Appends prediction rows durably and turns them into Parquet segments."""

    def __init__(
        self,
        folder: Path,
        *,
        durability: Literal["async", "sync"] = "async",
        flush_interval_s: float = 1.0,
    ) -> None:
        self.folder = folder
        self.durability = durability
        self.flush_interval_s = flush_interval_s
        self._pending: list[LogBatch] = []
        self._lock = threading.Lock()  # guards the pending rows and the WAL handle
        self._flush_lock = threading.Lock()  # one flush at a time, start to finish
        self._wal: Any = None
        self._wal_path: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0

    def start(self) -> None:
        """Recover WAL files of dead processes and start the flusher thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        recover_wal_files(self.folder)
        if self.durability == "sync":
            self._open_wal()
        self._thread = threading.Thread(target=self._run, name="modelpilot-predlog", daemon=True)
        self._thread.start()

    def append(self, batch: LogBatch) -> None:
        """Record a batch (in ``sync`` mode it is on disk when this returns)."""
        if self.durability == "sync":
            line = batch.wal_line()
            with self._lock:
                self._wal.write(line)
                self._wal.flush()
                os.fsync(self._wal.fileno())
        else:
            with self._lock:
                self._pending.append(batch)

    def flush(self) -> int:
        """Write everything recorded so far into Parquet segments; returns rows written.

        Flushes are serialised: when this returns, rows another flush (the background
        thread's) had already taken are on disk too, so "flush, then read" sees every row.
        """
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
                closed = self._rotate_wal() if self.durability == "sync" else None
            written = write_segments(self.folder, pending) if pending else 0
            if closed is not None:
                written += convert_wal(self.folder, closed)
            self.rows_written += written
            return written

    def close(self) -> None:
        """Stop the flusher and flush the rest."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._lock:
            if self._wal is not None:
                self._wal.close()
                if self._wal_path is not None and self._wal_path.stat().st_size == 0:
                    self._wal_path.unlink()
                self._wal = None

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except OSError:  # disk trouble: keep serving; the next flush retries
                continue

    def _open_wal(self) -> None:
        self._wal_path = self.folder / f"wal-{os.getpid()}-{now_ms()}-{next(_SEQ)}.jsonl"
        self._wal = self._wal_path.open("ab")

    def _rotate_wal(self) -> Path | None:
        if self._wal is None or self._wal_path is None or self._wal.tell() == 0:
            return None
        self._wal.close()
        closed = self._wal_path
        self._open_wal()
        return closed


def write_segments(folder: Path, batches: list[LogBatch]) -> int:
    """Write batches as one Parquet segment per model (atomically); returns rows written.

    Batches of one model may differ in columns (another version's inputs): the segment holds
    the union, with nulls where a batch had no such column.
    """
    by_model: dict[str, list[LogBatch]] = defaultdict(list)
    for batch in batches:
        by_model[batch.model].append(batch)
    for model, model_batches in by_model.items():
        target_dir = folder / _safe(model)
        target_dir.mkdir(parents=True, exist_ok=True)
        name = f"seg-{now_ms()}-{os.getpid()}-{next(_SEQ)}.parquet"
        tmp = target_dir / f".{name}.tmp"
        tables = [b.table() for b in _merged(model_batches)]
        table = pa.concat_tables(tables, promote_options="permissive")
        pq.write_table(table, tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target_dir / name)
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


def convert_wal(folder: Path, wal: Path) -> int:
    """Turn one closed WAL file into segments, then delete it (a torn last line is skipped).

    Lines are batches (``{"model", "size", "columns"}``); a line without ``columns`` is one
    row, as earlier versions wrote them.
    """
    batches, rows = [], []
    with wal.open("rb") as handle:
        for line in handle:
            with contextlib.suppress(orjson.JSONDecodeError):
                doc = orjson.loads(line)
                if "columns" in doc:
                    batches.append(LogBatch(doc["model"], doc["size"], doc["columns"]))
                else:
                    rows.append(doc)
    batches += LogBatch.from_rows(rows)
    written = write_segments(folder, batches) if batches else 0
    wal.unlink()
    return written


def recover_wal_files(folder: Path) -> int:
    """Convert WAL files left by processes that are no longer running."""
    recovered = 0
    for wal in sorted(folder.glob("wal-*.jsonl")):
        pid = int(wal.name.split("-")[1])
        if pid != os.getpid() and _alive(pid):
            continue
        recovered += convert_wal(folder, wal)
    return recovered


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def segments_glob(folder: Path) -> str:
    """The glob DuckDB reads for the ``predictions`` view."""
    return str(folder / "**" / "seg-*.parquet")


def _create_view(con: Any, folder: Path) -> None:
    """The ``predictions`` view (DDL cannot take parameters, so the path is quoted here)."""
    glob = segments_glob(folder).replace("'", "''")
    con.execute(
        f"CREATE VIEW predictions AS SELECT * FROM read_parquet('{glob}', union_by_name = true)"
    )


def query(folder: Path, sql: str) -> pd.DataFrame:
    """Run SQL over a view named ``predictions`` spanning every segment."""
    import duckdb

    if not any(folder.glob("**/seg-*.parquet")):
        raise NotFound(
            f"No prediction log segments under {folder} yet. Serve some requests first "
            "(the log flushes every second, and on shutdown).",
            field="predictions",
        )
    with duckdb.connect() as con:
        _create_view(con, folder)
        try:
            return con.execute(sql).df()
        except duckdb.Error as exc:
            raise InvalidInput(f"The query failed: {exc}", field="sql") from exc


def read_predictions(
    folder: Path, *, model: str | None = None, since: Any = None, deployment: str | None = None
) -> pd.DataFrame:
    """Logged predictions as a DataFrame, optionally for one model/deployment and after a time.

    ``since``: an ISO time, a datetime, or a duration back from now (``30m``, ``2h``, ``1d``).
    """
    clauses: list[str] = []
    params: list[Any] = []
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if deployment is not None:
        clauses.append("deployment = ?")
        params.append(deployment)
    if since is not None:
        clauses.append("timestamp_ms >= ?")
        params.append(since_ms(since))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    import duckdb

    if not any(folder.glob("**/seg-*.parquet")):
        return pd.DataFrame()
    with duckdb.connect() as con:
        _create_view(con, folder)
        return con.execute(f"SELECT * FROM predictions{where} ORDER BY timestamp_ms", params).df()
