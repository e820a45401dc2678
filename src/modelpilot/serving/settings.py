"""Data-plane settings: batching (server-wide and per model), limits, prediction-log durability."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class BatchingOptions:
    """How one model's requests are batched.

    ``max_wait_ms`` bounds the latency batching may add; ``max_batch_size`` bounds a batch's
    rows; ``queue_limit`` rows may wait before new requests get 503; ``enabled=False`` gives
    one predict call per request.
    """

    enabled: bool = True
    max_batch_size: int = 64
    max_wait_ms: float = 0.0
    queue_limit: int = 4096


@dataclass(frozen=True)
class ServingSettings:
    """How a model server behaves. Defaults suit a laptop and a small production box.

    The batching fields are the server-wide defaults; ``model_batching`` overrides them per
    model name (from a server file, see :mod:`modelpilot.serving.config`).

    >>> s = ServingSettings(model_batching={"big": BatchingOptions(max_batch_size=8)})
    >>> (s.batching_for("big").max_batch_size, s.batching_for("churn").max_batch_size)
    (8, 64)
    """

    max_batch_size: int = 64
    # 0 = dispatch as soon as the model is free; requests arriving while it computes form the
    # next batch. Measured on one core (benchmarks/serving.py): a fixed 2 ms wait cut c=1
    # throughput from 571 to 207 req/s and did not raise it at c=32.
    max_wait_ms: float = 0.0
    batching: bool = True
    queue_limit: int = 4096
    max_body_bytes: int = 8 * 1024 * 1024
    # Rows per request, counted before validation (413 above). Validating 400k rows held the
    # event loop for ~500 ms, and every small request waited; the default equals queue_limit,
    # above which a request could never be queued anyway.
    max_rows: int = 4096
    # Connection limits, enforced by the HTTP protocol (modelpilot.serving.server): a request's
    # head and body must arrive within read_timeout_s of its first byte or the connection is
    # closed (slow clients trickling headers or bodies); idle keep-alive connections close
    # after keep_alive_s; past max_connections, new requests get 503.
    read_timeout_s: float = 30.0
    keep_alive_s: int = 5
    max_connections: int = 1000
    durability: Literal["async", "sync"] = "async"
    flush_interval_s: float = 1.0
    log_predictions: bool = True
    deployment_poll_s: float = 0.5
    # A batch whose model has lately predicted in less than this runs on the event loop; a
    # slower one in the worker thread, so the loop keeps taking requests meanwhile. Measured
    # (benchmarks/serving.py, c=32, one core, ~0.6 ms batches): the thread hand-off cost 8%
    # of throughput. 0 = always the worker thread. Never inline with a sync log (fsync).
    inline_predict_ms: float = 2.0
    # Native threads (OpenMP/BLAS) per predict call. Batching already amortises the work, and
    # on a busy machine OpenMP's spinning threads slowed one-row predicts of a boosted
    # pipeline from 9 ms to 35-46 ms (measured with 2 cores under load).
    model_threads: int = 1
    model_control: bool = False  # load/unload over HTTP (Triton's repository extension)
    # Inference, metadata and metrics need a valid token (viewer+); the admin routes
    # (/v2/repository/*) need deployer always (modelpilot.serving.access).
    require_token: bool = False
    # A verified token is remembered this long (keyed by its digest), so a revoked token is
    # refused within this time; a new one is checked with the store or control plane at once.
    token_cache_s: float = 30.0
    model_batching: Mapping[str, BatchingOptions] = field(default_factory=dict)
    # This process's index among `modelpilot serve --replicas N` (None: a lone server). A
    # replica binds its port with SO_REUSEPORT and labels its /metrics with the index.
    replica: int | None = None

    def batching_for(self, model: str) -> BatchingOptions:
        """The batching options of one model: its override, else the server-wide defaults."""
        override = self.model_batching.get(model)
        if override is not None:
            return override
        return BatchingOptions(
            self.batching, self.max_batch_size, self.max_wait_ms, self.queue_limit
        )
