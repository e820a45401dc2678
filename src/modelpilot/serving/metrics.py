"""Prometheus metrics of the data plane, in a registry per app (never the global one).

Names follow Prometheus conventions: ``_total`` counters, ``_seconds`` histograms, base units.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServingMetrics:
    """Request, error, latency, batch-size and queue-depth series per model and version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.latency = Histogram(
            "modelpilot_request_duration_seconds",
            "Time from request to response.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "modelpilot_batch_size_rows",
            "Rows per predict call.",
            labels,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predict_seconds = Histogram(
            "modelpilot_predict_duration_seconds",
            "Time in one predict call.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "modelpilot_queue_depth_rows",
            "Rows waiting for a batch.",
            labels,
            registry=self.registry,
        )

        # Children by label values: prometheus_client's labels() takes a lock and rebuilds the
        # key on every call (~1.5 us); the hot path looks them up here instead.
        self._answer_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._batch_children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def answered(
        self, model: str, version: str, code: str, seconds: float, error: str | None = None
    ) -> None:
        """Count one answered request and its latency (and its error kind, if any)."""
        key = (model, version, code)
        children = self._answer_children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(model, version))
            self._answer_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if error is not None:
            self.errors.labels(model, version, error).inc()

    def predicted(self, model: str, version: str, rows: int, seconds: float) -> None:
        """Record one predict call: its batch size and duration."""
        key = (model, version)
        children = self._batch_children.get(key)
        if children is None:
            children = (self.batch_size.labels(*key), self.predict_seconds.labels(*key))
            self._batch_children[key] = children
        children[0].observe(rows)
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
