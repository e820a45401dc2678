"""Data-plane settings: batching, limits, durability of the prediction log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServingSettings:
    """How a model server behaves. Defaults suit a laptop and a small production box.

    ``max_wait_ms`` bounds the latency batching may add; ``max_batch_size`` bounds a batch's
    rows; ``queue_limit`` rows waiting per model before new requests get 503.
    """

    max_batch_size: int = 64
    # 0 = dispatch as soon as the model is free; requests arriving while it computes form the
    # next batch. Measured on one core (benchmarks/serving.py): a fixed 2 ms wait cut c=1
    # throughput from 571 to 207 req/s and did not raise it at c=32.
    max_wait_ms: float = 0.0
    batching: bool = True
    queue_limit: int = 4096
    max_body_bytes: int = 8 * 1024 * 1024
    durability: Literal["async", "sync"] = "async"
    flush_interval_s: float = 1.0
    log_predictions: bool = True
    deployment_poll_s: float = 0.5
    model_control: bool = False  # load/unload over HTTP (Triton's repository extension)
