"""The prediction log's writer: every request and response, off the hot path, as Parquet segments.

Rows are typed per model (``in.<column>``, ``out.prediction``, ``out.proba.<class>``) so
monitoring can read features directly; :mod:`.reader` reads all segments as one table.

Durability:
* ``async``: rows collect in memory and a flusher thread writes a Parquet segment every
  ``flush_interval_s``; a crash loses at most that interval.
* ``sync``: each batch's rows are appended to this process's write-ahead file and fsynced
  *before* the batch's responses are released (group commit). The flusher turns closed WAL
  files into Parquet segments; on start-up and every interval after, WAL files nobody holds
  a lock on (their writer died) are recovered. So no response a client received is missing
  from the log, even after SIGKILL, and none is logged twice, even with several servers
  (each PID 1 in its own container) on one folder: see :class:`PredictionLog` and :mod:`.wal`.

Segments are written to a temporary name, fsynced and renamed, so readers never see half a file.
Every file is created with mode 0600 whatever the umask (inputs may be personal data), and a
:class:`~modelpilot.predictions.log_policy.LogPrivacy` (hash, redact or drop columns) is applied
in :meth:`PredictionLog.append`, before any byte is written; see :mod:`.log_policy`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Literal

from modelpilot.clock import now_ms
from modelpilot.predictions.batch import LogBatch
from modelpilot.predictions.bucket import LogBucket
from modelpilot.predictions.files import safe_name
from modelpilot.predictions.log_policy import LogPrivacy
from modelpilot.predictions.retention import purge_expired
from modelpilot.predictions.segments import write_segments
from modelpilot.predictions.wal import WalFile, recover_wal_files

log = logging.getLogger(__name__)


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
        bucket: LogBucket | None = None,
        ship_interval_s: float = 10.0,
    ) -> None:
        self.folder = folder
        # Sealed segments also go to this bucket (modelpilot.predictions.bucket), at most every
        # ship_interval_s and at close; a failed upload is retried, the local copy stays.
        self.bucket = bucket
        self.ship_interval_s = ship_interval_s
        self._shipped_at = 0.0
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
        self._wal: WalFile | None = None
        self._closed: list[WalFile] = []  # rotated out, still locked, not yet converted
        self._writer = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.flush_errors = 0  # read by /metrics (modelpilot_prediction_log_flush_errors_total)
        self.ship_errors = 0

    def start(self) -> None:
        """Recover WAL files of dead processes and start the flusher thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = f"{safe_name(socket.gethostname())}-{secrets.token_hex(6)}"
        recover_wal_files(self.folder)
        if self.durability == "sync":
            self._wal = WalFile.create(self.folder, self._writer)
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
        fresh = WalFile.create(self.folder, self._writer) if wal and wal.size_bytes else None
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
        """Stop the flusher, flush the rest (and ship it, with a bucket)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        self._ship(force=True)
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
            self._ship()
            self._purge_expired()

    def _ship(self, *, force: bool = False) -> None:
        """Upload new segments to the bucket; a failure is counted and logged, and the next
        ship retries (the segments stay on disk)."""
        now = time.monotonic()
        if self.bucket is None or (not force and now - self._shipped_at < self.ship_interval_s):
            return
        self._shipped_at = now
        try:
            self.bucket.ship(self.folder)
        except Exception as exc:
            self.ship_errors += 1
            log.error(
                "Shipping the prediction log to %s failed (retried): %s", self.bucket.uri, exc
            )

    def _purge_expired(self) -> None:
        """Retention: delete segments past their policies' ``retention_days`` (hourly)."""
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
