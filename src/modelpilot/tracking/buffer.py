"""Buffered metric writes: ``log_metric`` appends to memory, a thread commits in batches.

Why: a transaction per point caps a tracker at a few hundred points/s (MLflow's local store
does ~115/s here), and a training loop should never wait on the database. Points are
validated before they are buffered, flushed every ``flush_interval_ms`` or when
``max_points`` are pending, and always before the run ends, before its metrics are read,
and at interpreter exit. A failed flush keeps the points and re-raises on the next
explicit :meth:`MetricBuffer.flush`, so nothing is dropped silently.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Mapping, Sequence

from modelpilot.tracking.service import MetricRow

FlushFn = Callable[[Mapping[str, Sequence[MetricRow]]], None]


class MetricBuffer:
    """Per-process metric buffer with a background flusher.

    >>> written = []
    >>> buf = MetricBuffer(lambda batch: written.append(dict(batch)), flush_interval_ms=50)
    >>> buf.add("run1", ("loss", 0.5, 0, 1))
    >>> buf.flush()
    >>> written[0]["run1"]
    [('loss', 0.5, 0, 1)]
    >>> buf.close()
    """

    def __init__(
        self, write: FlushFn, *, flush_interval_ms: int = 200, max_points: int = 10_000
    ) -> None:
        self._write = write
        self._interval_s = flush_interval_ms / 1000
        self._max_points = max_points
        self._pending: dict[str, list[MetricRow]] = {}
        self._count = 0
        self._lock = threading.Lock()  # guards _pending and _count
        self._flush_lock = threading.Lock()  # one writer at a time, in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        atexit.register(self._flush_at_exit)
        os.register_at_fork(after_in_child=self._reset_after_fork)

    def add(self, run_id: str, row: MetricRow) -> None:
        """Buffer one validated point."""
        with self._lock:
            self._pending.setdefault(run_id, []).append(row)
            self._count += 1
            full = self._count >= self._max_points
        self._ensure_thread()
        if full:
            self._wake.set()

    def add_many(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Buffer several validated points."""
        with self._lock:
            self._pending.setdefault(run_id, []).extend(rows)
            self._count += len(rows)
            full = self._count >= self._max_points
        self._ensure_thread()
        if full:
            self._wake.set()

    def pending(self) -> int:
        """Points buffered but not yet committed."""
        with self._lock:
            return self._count

    def flush(self) -> None:
        """Commit everything buffered now; raise if this or an earlier flush failed."""
        self._flush_once()
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Flush and stop the background thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()

    def _flush_once(self) -> None:
        with self._flush_lock:
            with self._lock:
                batch, self._pending, self._count = self._pending, {}, 0
            if not batch:
                return
            try:
                self._write(batch)
            except BaseException as exc:
                with self._lock:  # put the points back in front so order is kept
                    for run_id, rows in batch.items():
                        self._pending[run_id] = rows + self._pending.get(run_id, [])
                        self._count += len(rows)
                    self._error = exc
                raise

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._stop.clear()
                    self._thread = threading.Thread(
                        target=self._loop, name="modelpilot-metric-flush", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            try:
                self._flush_once()
            except Exception:  # kept in self._error and re-raised by flush()
                self._stop.wait(self._interval_s)

    def _flush_at_exit(self) -> None:
        self._stop.set()
        self._wake.set()
        try:
            self._flush_once()
        except Exception:  # an exit handler has nowhere to raise to; keep going
            return

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending, self._count, self._thread = {}, 0, None
