"""In-process latency of one prediction, for the latency check of a promotion gate.

Times ``n`` calls of ``predict`` on one row with ``time.perf_counter_ns`` after ``warmup``
untimed calls (first calls pay for lazy imports, JIT-compiled kernels and caches). This is the
model's own cost, what a replica adds to each request before batching, network and
serialisation; the serving benchmark measures the rest. Percentiles use linear interpolation
between order statistics (NumPy's default), so p99 needs ``n`` of a few hundred to mean much.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"x": np.arange(10.0)})
>>> stats = measure_latency(LinearRegression().fit(X, 2 * X["x"]), X.iloc[[0]], n=50)
>>> stats.n, 0 < stats.p50_ms <= stats.p99_ms
(50, True)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown


@dataclass(frozen=True)
class LatencyStats:
    """Latency percentiles of one-row ``predict`` calls, in milliseconds."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "max_ms": self.max_ms,
            "n": self.n,
        }


def measure_latency(
    model: object, example_row: pd.DataFrame, *, n: int = 500, warmup: int = 20
) -> LatencyStats:
    """p50/p90/p99 latency of ``model.predict(example_row)`` for a one-row DataFrame.

    Use it before :func:`~modelpilot.evaluation.check_gate` to feed a policy's latency check:
    ``check_gate(policy, result, latency_p99_ms=measure_latency(model, row).p99_ms)``.
    """
    predict = getattr(model, "predict", None)
    if not callable(predict):
        raise InvalidInput(
            f"measure_latency needs a model with predict(DataFrame); got "
            f"{type(model).__name__}. Pass the fitted model.",
            field="model",
        )
    if not isinstance(example_row, pd.DataFrame) or len(example_row) != 1:
        got = (
            f"{len(example_row)} rows"
            if isinstance(example_row, pd.DataFrame)
            else (type(example_row).__name__)
        )
        raise InvalidInput(
            f"measure_latency times one row; got {got}. Pass a one-row DataFrame, "
            "e.g. data.iloc[[0]].",
            field="example_row",
        )
    if n < 1 or warmup < 0:
        raise InvalidInput(
            f"n must be ≥ 1 and warmup ≥ 0; got n={shown(n)}, warmup={shown(warmup)}.",
            field="n",
        )
    timings = np.empty(n, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the evaluation reports the model's warnings already
        for _ in range(warmup):
            predict(example_row)
        for i in range(n):
            start = time.perf_counter_ns()
            predict(example_row)
            timings[i] = (time.perf_counter_ns() - start) / 1e6
    p50, p90, p99 = np.percentile(timings, [50, 90, 99])
    return LatencyStats(
        float(p50), float(p90), float(p99), float(timings.mean()), float(timings.max()), n
    )
