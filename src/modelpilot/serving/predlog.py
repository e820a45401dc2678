"""The prediction log: every request and response, off the hot path, as Parquet segments.

Rows are typed per model (``in.<column>``, ``out.prediction``, ``out.proba.<class>``) so
monitoring can read features directly; DuckDB reads all segments as one ``predictions`` view.

Durability:
* ``async``: rows collect in memory and a flusher thread writes a Parquet segment every
  ``flush_interval_s``; a crash loses at most that interval.
* ``sync``: each batch's rows are appended to this process's write-ahead file and fsynced
  *before* the batch's responses are released (group commit). The flusher turns closed WAL
  files into Parquet segments; on start-up and every interval after, WAL files nobody holds
  a lock on (their writer died) are recovered. So no response a client received is missing
  from the log, even after SIGKILL, and none is logged twice, even with several servers
  (each PID 1 in its own container) on one folder: see :class:`PredictionLog`.

Segments are written to a temporary name, fsynced and renamed, so readers never see half a file.
Every file is created with mode 0600 whatever the umask (inputs may be personal data), and a
:class:`~modelpilot.serving.log_policy.LogPrivacy` (hash, redact or drop columns) is applied in
:meth:`PredictionLog.append`, before any byte is written; see :mod:`.log_policy`.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelpilot.clock import now_ms, since_ms
from modelpilot.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from modelpilot.serving.log_policy import LogPrivacy

log = logging.getLogger(__name__)
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
    """Appends prediction rows durably and turns them into Parquet segments.

    Several processes may share one folder (replicas, two containers on a volume, both PID 1):
    each names its files by host name plus a random id chosen at :meth:`start`, and holds an
    exclusive ``flock`` on every write-ahead file it owns until that file is converted. Any
    process converts a write-ahead file only after taking its lock, which the kernel releases
    when the owner dies, so a live server's file is never touched by another. (``flock``
    needs one kernel or a file system that forwards it: local disks, Docker volumes, NFSv4.)
    """

    def __init__(
        self,
        folder: Path,
        *,
        durability: Literal["async", "sync"] = "async",
        flush_interval_s: float = 1.0,
        privacy: LogPrivacy | None = None,
        purge_interval_s: float = 3600.0,
    ) -> None:
        self.folder = folder
        self.durability = durability
        self.flush_interval_s = flush_interval_s
        # Swapped whole by set_privacy (policy changes reach a running server); read once
        # per append, so a batch sees one policy set.
        self.privacy = privacy
        self.purge_interval_s = purge_interval_s  # retention runs at most this often
        self._purged_at: float | None = None
        self._pending: list[LogBatch] = []
        self._lock = threading.Lock()  # guards the pending rows and the WAL handle
        self._flush_lock = threading.Lock()  # one flush at a time, start to finish
        self._wal: _Wal | None = None
        self._closed: list[_Wal] = []  # rotated out, still locked, not yet converted
        self._writer = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.flush_errors = 0  # read by /metrics (modelpilot_prediction_log_flush_errors_total)

    def start(self) -> None:
        """Recover WAL files of dead processes and start the flusher thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = f"{_safe(socket.gethostname())}-{secrets.token_hex(6)}"
        recover_wal_files(self.folder)
        if self.durability == "sync":
            self._wal = _Wal.create(self.folder, self._writer)
        self._thread = threading.Thread(target=self._run, name="modelpilot-predlog", daemon=True)
        self._thread.start()

    def set_privacy(self, privacy: LogPrivacy | None) -> None:
        """Apply these column policies (and retention) from the next batch on."""
        self.privacy = privacy

    def append(self, batch: LogBatch) -> None:
        """Record a batch (in ``sync`` mode it is on disk when this returns), with the
        columns the privacy policies allow."""
        privacy = self.privacy
        batches = [batch] if privacy is None else privacy.apply(batch)
        if self.durability == "sync":
            line = b"".join(b.wal_line() for b in batches)
            with self._lock:
                assert self._wal is not None, "PredictionLog.start() was not called"
                self._wal.append(line)
        else:
            with self._lock:
                self._pending.extend(batches)

    def flush(self) -> int:
        """Write everything recorded so far into Parquet segments; returns rows written.

        Flushes are serialised: when this returns, rows another flush (the background
        thread's) had already taken are on disk too, so "flush, then read" sees every row.
        A failure is counted in ``flush_errors``, logged and raised; the rows stay queued
        (async) or in their locked write-ahead file (sync), and the next flush retries them.
        """
        with self._flush_lock:
            try:
                written = self._flush()
            except Exception as exc:
                self._report(exc)
                raise
            self.rows_written += written
            return written

    def _flush(self) -> int:
        wal = self._wal
        fresh = _Wal.create(self.folder, self._writer) if wal and wal.size_bytes else None
        with self._lock:  # appends wait only for this swap, not for the file creation
            pending, self._pending = self._pending, []
            if fresh is not None and self._wal is not None:
                self._closed.append(self._wal)
                self._wal = fresh
        written = self._write_pending(pending)
        while self._closed:  # oldest first; a failure leaves it (and the rest) for next time
            written += self._closed[0].convert(self.folder)
            self._closed.pop(0)
        return written

    def _report(self, exc: BaseException) -> None:
        self.flush_errors += 1
        log.error(
            "Prediction log flush into %s failed; the rows are kept and retried: %s: %s",
            self.folder,
            type(exc).__name__,
            exc,
        )

    def _write_pending(self, pending: list[LogBatch]) -> int:
        """One segment per model; the batches of a model whose write failed go back in line."""
        by_model: dict[str, list[LogBatch]] = defaultdict(list)
        for batch in pending:
            by_model[batch.model].append(batch)
        written, failed, error = 0, [], None
        for batches in by_model.values():
            try:
                written += write_segments(self.folder, batches)
            except Exception as exc:
                failed += batches
                error = exc
        if error is not None:
            with self._lock:
                self._pending[:0] = failed
            raise error
        return written

    def close(self) -> None:
        """Stop the flusher and flush the rest."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._lock:
            if self._wal is not None:
                self._wal.discard_if_empty()
                self._wal = None

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            with contextlib.suppress(Exception):  # counted and logged by flush; retried
                self.flush()
            try:
                recover_wal_files(self.folder)  # files of peers that died since
            except Exception as exc:
                self._report(exc)
            self._purge_expired()

    def _purge_expired(self) -> None:
        """Retention: delete segments past their policies' ``retention_days`` (hourly)."""
        from modelpilot.serving.retention import purge_expired

        privacy = self.privacy
        now = time.monotonic()
        if privacy is None or not privacy.policies:
            return
        if self._purged_at is not None and now - self._purged_at < self.purge_interval_s:
            return
        self._purged_at = now
        try:
            purge_expired(self.folder, privacy.policies, now_ms())
        except Exception as exc:  # retried at the next interval; serving goes on
            log.error("Prediction log retention purge in %s failed: %s", self.folder, exc)


@dataclass
class _Wal:
    """A write-ahead file this process owns, exclusively locked from creation to conversion."""

    path: Path
    handle: BinaryIO
    size_bytes: int = 0

    @staticmethod
    def create(folder: Path, writer: str) -> _Wal:
        """Create, lock, then rename into place: no other process ever sees it unlocked."""
        name = f"wal-{writer}-{now_ms()}-{next(_SEQ)}.jsonl"
        tmp = folder / f".{name}.tmp"
        handle = private_file(tmp)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, folder / name)
        _fsync_dir(folder)
        return _Wal(folder / name, handle)

    def append(self, line: bytes) -> None:
        self.handle.write(line)
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.size_bytes += len(line)

    def convert(self, folder: Path) -> int:
        """Into segments, then delete; the lock is released only after the file is gone."""
        written = convert_wal(folder, self.path)
        self.handle.close()
        return written

    def discard_if_empty(self) -> None:
        if self.size_bytes == 0:
            self.path.unlink()
        self.handle.close()


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
        target_dir = folder / _safe(model)
        target_dir.mkdir(parents=True, exist_ok=True)
        tmp = target_dir / f".{segment}.{secrets.token_hex(4)}.tmp"
        tables = [b.table() for b in _merged(model_batches)]
        table = pa.concat_tables(tables, promote_options="permissive")
        with private_file(tmp) as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target_dir / segment)
        _fsync_dir(target_dir)
    return sum(b.size for b in batches)


def private_file(path: Path) -> BinaryIO:
    """A new file only its owner may read (0600, whatever the umask), open for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # the umask may have taken bits; only these, exactly
    return os.fdopen(fd, "wb")


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (POSIX: fsync the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    The caller holds the file's lock. Lines are batches (``{"model", "size", "columns"}``); a
    line without ``columns`` is one row, as earlier versions wrote them.
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
    name = f"seg-{wal.stem.removeprefix('wal-')}.parquet"
    written = write_segments(folder, batches, name=name) if batches else 0
    wal.unlink()
    _fsync_dir(folder)
    return written


def recover_wal_files(folder: Path) -> int:
    """Convert WAL files nobody holds: their writer died (or shut down before converting).

    A file whose lock another process holds is live and left alone, whatever its name says.
    """
    recovered = 0
    for wal in sorted(folder.glob("wal-*.jsonl")):
        with _unowned(wal) as is_ours:
            if is_ours:
                recovered += convert_wal(folder, wal)
    return recovered


@contextlib.contextmanager
def _unowned(path: Path) -> Iterator[bool]:
    """Lock ``path`` if no process holds it; True while held and still the file at ``path``.

    The inode check matters: another recoverer may convert and delete the file between our
    ``open`` and our lock, and converting that deleted inode again would duplicate its rows.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        yield same


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
    """Run one read-only SELECT (or WITH) over the ``predictions`` view spanning every segment.

    The SQL comes from a person at a terminal, so it gets the prediction log and nothing else:
    one statement, SELECT or WITH only, in a connection whose file access is limited to the
    log's folder and whose configuration is locked (DuckDB ``enable_external_access`` and
    ``allowed_directories``). ``read_csv('/etc/passwd')``, ``COPY ... TO``, ``ATTACH`` and
    ``SET`` all fail with InvalidInput.
    """
    import duckdb

    folder = folder.resolve()  # the view and the allowed directory must name it alike
    if not any(folder.glob("**/seg-*.parquet")):
        raise NotFound(
            f"No prediction log segments under {folder} yet. Serve some requests first "
            "(the log flushes every second, and on shutdown).",
            field="predictions",
        )
    with duckdb.connect() as con:
        _create_view(con, folder)
        _check_read_only(con, sql)
        _lock_to_folder(con, folder)
        try:
            return con.execute(sql).df()
        except duckdb.PermissionException as exc:
            raise InvalidInput(
                f"The query tried to touch a file outside the prediction log "
                f"({_first_line(exc)}); `modelpilot logs query` only reads the prediction "
                "log: query the view, e.g. SELECT count(*) FROM predictions.",
                field="sql",
            ) from exc
        except duckdb.Error as exc:
            raise InvalidInput(f"The query failed: {_first_line(exc)}", field="sql") from exc


def _check_read_only(con: Any, sql: str) -> None:
    """Accept exactly one SELECT statement (a WITH query parses as one)."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidInput(f"The query does not parse: {_first_line(exc)}", field="sql") from exc
    kinds = [s.type.name for s in statements]
    if kinds != ["SELECT"]:
        got = ", ".join(kinds) or "nothing"
        raise InvalidInput(
            f"`modelpilot logs query` runs only SELECT or WITH queries, one at a time; got "
            f"{got}. Example: SELECT model, count(*) FROM predictions GROUP BY model.",
            field="sql",
        )


def _lock_to_folder(con: Any, folder: Path) -> None:
    """Files only under ``folder`` (the view reads them lazily), and no way to undo that."""
    allowed = (str(folder).rstrip("/") + "/").replace("'", "''")
    con.execute(f"SET allowed_directories = ['{allowed}']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
