"""Prometheus metrics of the data plane, in a registry per app (never the global one).

Each process serves its own series. With ``modelpilot serve --replicas N`` every replica
answers ``/metrics`` for itself (on the shared port, whichever replica the connection
reached; on ``--replica-ports`` base + index, that replica), labelled by
``modelpilot_replica_info``; Prometheus scrapes each replica and sums with PromQL. Not
prometheus_client's multiprocess mode: it writes every increment to a memory-mapped file
(measured on this machine: 2.2 us per ``Counter.inc`` against 0.8 us in memory, 4.9 against
1.7 us per ``Histogram.observe``), cannot carry the custom collectors here
(:class:`BulkHistogram`, :class:`LogFlushErrors`), and on Kubernetes each pod is scraped
on its own anyway (see docs/scale-out.md).

Names follow Prometheus conventions: ``_total`` counters, ``_seconds`` histograms, base units.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


FOLD_EVERY = 1024  # request durations held before they are folded into bucket counts


class BulkHistogram(Collector):
    """A histogram per (model, version) whose observations are folded into buckets in bulk.

    prometheus_client's ``Histogram.observe`` takes two locks and walks the buckets on every
    call (~1.5 us); at 10,000+ requests/s on one core that is a measurable share of each
    request (benchmarks/serving.py). Here the caller keeps a list of observations (a request's
    duration, a batch's size) and folds it with one ``np.searchsorted`` every FOLD_EVERY
    observations and before every scrape (see :class:`ServingMetrics`).
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self.counts: dict[tuple[str, str], np.ndarray] = {}
        self.sums: dict[tuple[str, str], float] = {}

    def add(self, key: tuple[str, str], observed: list[float]) -> None:
        """Fold observations into the series of ``key``."""
        values = np.asarray(observed, dtype=np.float64)
        slots = np.searchsorted(self.bounds, values, side="left")  # le: value <= bound
        counts = np.bincount(slots, minlength=len(self.bounds) + 1)
        if key in self.counts:
            self.counts[key] += counts
            self.sums[key] += float(values.sum())
        else:
            self.counts[key] = counts
            self.sums[key] = float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=("model", "version"))
        edges = [repr(float(b)) for b in self.bounds] + ["+Inf"]  # as prometheus_client writes them
        for key, counts in self.counts.items():
            cumulative = np.cumsum(counts).tolist()
            family.add_metric(list(key), list(zip(edges, cumulative, strict=True)), self.sums[key])
        yield family


class FlushErrorSource(Protocol):
    """What the metrics read from the prediction log: its failed flushes so far."""

    @property
    def flush_errors(self) -> int: ...


class LogFlushErrors(Collector):
    """Failed prediction-log flushes, read from the log at scrape time (it counts them itself,
    in its flusher thread, so nothing on that path touches prometheus_client)."""

    def __init__(self, source: FlushErrorSource) -> None:
        self.source = source

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "modelpilot_prediction_log_flush_errors",
            "Prediction-log flushes (segment writes, WAL conversions) that failed; their rows "
            "are kept and retried.",
            value=self.source.flush_errors,
        )


class ServingMetrics:
    """Request, error, latency, batch-size and queue-depth series per model and version."""

    def __init__(self, log: FlushErrorSource | None = None, replica: int | None = None) -> None:
        self.registry = CollectorRegistry()
        if log is not None:
            self.registry.register(LogFlushErrors(log))
        if replica is not None:  # one of `serve --replicas N`: which one answered this scrape
            Gauge(
                "modelpilot_replica_info",
                "This replica's index and process id (modelpilot serve --replicas).",
                ("replica", "pid"),
                registry=self.registry,
            ).labels(str(replica), str(os.getpid())).set(1)
        labels = ("model", "version")
        self.requests = Counter(
            "modelpilot_requests",
            "Inference requests answered.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.errors = Counter(
            "modelpilot_request_errors",
            "Inference requests that failed.",
            (*labels, "kind"),
            registry=self.registry,
        )
        self.latency = BulkHistogram(
            "modelpilot_request_duration_seconds", "Time from request to response.", LATENCY_BUCKETS
        )
        self.batch_size = BulkHistogram(
            "modelpilot_batch_size_rows", "Rows per predict call.", BATCH_BUCKETS
        )
        self.predict_seconds = BulkHistogram(
            "modelpilot_predict_duration_seconds", "Time in one predict call.", LATENCY_BUCKETS
        )
        for histogram in (self.latency, self.batch_size, self.predict_seconds):
            self.registry.register(histogram)
        self.out_of_domain_rows = Counter(
            "modelpilot_out_of_domain_rows",
            "Rows answered although a value was outside the model's recorded input domain "
            "(an unseen category, a number far outside the training range).",
            labels,
            registry=self.registry,
        )
        self.out_of_domain_values = Counter(
            "modelpilot_out_of_domain_values",
            "Values answered although outside the model's recorded input domain, by column "
            "and kind: unseen_category, out_of_range (a number far outside the training "
            "range), unexpected_null (missing where the training data had no missing value).",
            (*labels, "column", "kind"),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "modelpilot_queue_depth_rows",
            "Rows waiting for a batch.",
            labels,
            registry=self.registry,
        )

        # Durations of answered requests by (model, version, code), not yet folded.
        self._answered: dict[tuple[str, str, str], list[float]] = {}
        # The same lists of the 200s by (model, version): the hot path's one lookup.
        self._answered_ok: dict[tuple[str, str], list[float]] = {}
        # Sizes and durations of predict calls by (model, version), not yet folded. Unlike the
        # request durations these also arrive from the predict thread (a slow model's batches
        # run there), hence the lock: one acquisition per batch, not per request.
        self._batches: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        self._batch_lock = threading.Lock()

    def answered(
        self, model: str, version: str, code: str, seconds: float, error: str | None = None
    ) -> None:
        """Count one answered request and its latency (and its error kind, if any)."""
        key = (model, version, code)
        pending = self._answered.get(key)
        if pending is None:
            pending = self._answered[key] = []
        pending.append(seconds)
        if len(pending) >= FOLD_EVERY:
            self._fold(key, pending)
        if error is not None:
            self.errors.labels(model, version, error).inc()

    def ok_durations(self, labels: tuple[str, str]) -> list[float]:
        """The list the hot path appends a 200's duration to, for (model, version) ``labels``:
        one append a request, then :meth:`fold_ok` once it holds FOLD_EVERY (on the event loop
        thread only, like every other call here but :meth:`predicted`)."""
        pending = self._answered_ok.get(labels)
        if pending is None:
            pending = self._answered_ok[labels] = self._answered.setdefault((*labels, "200"), [])
        return pending

    def answered_ok(self, labels: tuple[str, str], seconds: float) -> None:
        """``answered(*labels, "200", seconds)``, keyed by a runtime's own labels tuple."""
        pending = self.ok_durations(labels)
        pending.append(seconds)
        if len(pending) >= FOLD_EVERY:
            self.fold_ok(labels)

    def fold_ok(self, labels: tuple[str, str]) -> None:
        """Fold the 200s of ``labels`` appended so far into the counter and histogram."""
        self._fold((*labels, "200"), self.ok_durations(labels))

    def _fold(self, key: tuple[str, str, str], pending: list[float]) -> None:
        self.requests.labels(*key).inc(len(pending))
        self.latency.add(key[:2], pending)
        pending.clear()

    def predicted(self, model: str, version: str, rows: int, seconds: float) -> None:
        """Record one predict call: its batch size and duration (any thread)."""
        key = (model, version)
        with self._batch_lock:
            pending = self._batches.get(key)
            if pending is None:
                pending = self._batches[key] = ([], [])
            pending[0].append(rows)
            pending[1].append(seconds)
            if len(pending[0]) >= FOLD_EVERY:
                self._fold_batches(key, pending)

    def _fold_batches(self, key: tuple[str, str], pending: tuple[list[float], list[float]]) -> None:
        self.batch_size.add(key, pending[0])
        self.predict_seconds.add(key, pending[1])
        pending[0].clear()
        pending[1].clear()

    def out_of_domain(
        self,
        model: str,
        version: str,
        rows: int,
        values: Iterable[tuple[str, str, int]] = (),
    ) -> None:
        """Count rows of one predict call that were outside the input domain, and their
        outside values per ``(column, kind)`` (columns of the signature only, so the label
        sets stay bounded)."""
        self.out_of_domain_rows.labels(model, version).inc(rows)
        for column, kind, count in values:
            self.out_of_domain_values.labels(model, version, column, kind).inc(count)

    def render(self) -> bytes:
        """The text exposition format (everything answered so far included)."""
        for key, pending in self._answered.items():
            if pending:
                self._fold(key, pending)
        with self._batch_lock:
            for labels, batches in self._batches.items():
                if batches[0]:
                    self._fold_batches(labels, batches)
        return generate_latest(self.registry)
