"""What a candidate gains and what it costs: in-process speed, fidelity to its source, and the
holdout metric.

Speed is timed in this process on this CPU with ``time.perf_counter_ns`` around the model's
own call (``predict_proba`` for classifiers, else ``predict``) on input that already passed
the signature, so both models pay the same validation outside the timing. Fidelity compares
the two models row by row on the same prepared input.

>>> import numpy as np
>>> proba = np.array([[0.2, 0.8], [0.6, 0.4]])
>>> f = compare(proba, proba + [[1e-4, -1e-4], [0.0, 0.0]], is_classifier=True)
>>> f.agreement, round(f.max_abs_proba_diff, 6)
(1.0, 0.0001)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput

_WARMUP = 5
_MAX_CALLS = 300
_MIN_CALLS = 20
# Per batch size and model: the table is a guide, not the benchmark (benchmarks/optimize.py),
# and a slow source (a busy machine, OpenMP threads competing) must not stall the command.
_BUDGET_S = 1.0


@dataclass(frozen=True)
class Speed:
    """In-process latency percentiles (ms) at batch 1 and 64, and rows/s at batch 64 (from the
    median call); each from 20 to 300 calls, about a second's worth."""

    p50_ms_1: float
    p99_ms_1: float
    p50_ms_64: float
    p99_ms_64: float
    rows_per_s_64: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Fidelity:
    """How closely a candidate follows its source on some rows.

    ``agreement`` is the share of rows with the same predicted class (None for a regressor);
    the differences are of class probabilities, or for a regressor of predictions relative to
    ``max(1, |source|)``.
    """

    rows: int
    agreement: float | None
    max_abs_proba_diff: float
    mean_abs_proba_diff: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def outputs(predictor: Any, inputs: Any, is_classifier: bool) -> np.ndarray:
    """Probabilities of a classifier, predictions of a regressor, as float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predictor.predict_proba(inputs) if is_classifier else predictor.predict(inputs)
    return np.asarray(out, dtype=np.float64)


def compare(source: np.ndarray, candidate: np.ndarray, *, is_classifier: bool) -> Fidelity:
    """Fidelity of ``candidate``'s outputs to ``source``'s on the same rows."""
    if source.shape != candidate.shape:
        raise InvalidInput(
            f"The candidate's outputs have shape {list(candidate.shape)}; the source's have "
            f"{list(source.shape)}. The conversion changed what the model returns.",
            field="to",
        )
    if is_classifier:
        diff = np.abs(source - candidate)
        agreement: float | None = float(
            np.mean(np.argmax(source, axis=1) == np.argmax(candidate, axis=1))
        )
    else:
        diff = np.abs(source - candidate) / np.maximum(1.0, np.abs(source))
        agreement = None
    return Fidelity(len(source), agreement, float(diff.max()), float(diff.mean()))


def worst(*parts: Fidelity | None) -> dict[str, float | None]:
    """The lowest agreement and the largest difference over the measured sets."""
    present = [p for p in parts if p is not None]
    agreements = [p.agreement for p in present if p.agreement is not None]
    return {
        "agreement": min(agreements) if agreements else None,
        "max_abs_proba_diff": max(p.max_abs_proba_diff for p in present),
    }


def speed(predictor: Any, inputs: pd.DataFrame, is_classifier: bool) -> Speed:
    """Latency at batch 1 and 64 (rows repeated when fewer than 64) and rows/s at 64."""
    one = inputs.iloc[:1].reset_index(drop=True)
    reps = -(-64 // len(inputs))
    batch = pd.concat([inputs] * reps, ignore_index=True).iloc[:64] if reps > 1 else inputs[:64]
    call = predictor.predict_proba if is_classifier else predictor.predict
    at_1 = _timings(call, one)
    at_64 = _timings(call, batch.reset_index(drop=True))
    p50_1, p99_1 = np.percentile(at_1, [50, 99])
    p50_64, p99_64 = np.percentile(at_64, [50, 99])
    return Speed(float(p50_1), float(p99_1), float(p50_64), float(p99_64), 64_000.0 / float(p50_64))


def _timings(call: Any, data: pd.DataFrame) -> np.ndarray:
    """Up to _MAX_CALLS timed calls, stopping after _BUDGET_S once _MIN_CALLS are in."""
    timings: list[float] = []
    deadline = time.perf_counter_ns() + int(_BUDGET_S * 1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(_WARMUP):
            call(data)
        while len(timings) < _MAX_CALLS:
            start = time.perf_counter_ns()
            call(data)
            end = time.perf_counter_ns()
            timings.append((end - start) / 1e6)
            if end > deadline and len(timings) >= _MIN_CALLS:
                break
    return np.asarray(timings)


def holdout_metric(
    output: np.ndarray, labels: pd.Series, classes: list[Any] | None
) -> tuple[str, float | None]:
    """ROC AUC for two classes, accuracy for more, RMSE for a regressor."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    if classes is None:
        return "rmse", float(np.sqrt(np.mean((labels.to_numpy(dtype=float) - output) ** 2)))
    truth = labels.to_numpy()
    if len(classes) == 2:
        positive = truth == classes[1]
        if positive.all() or not positive.any():
            return "roc_auc", None  # one class only in the holdout: undefined
        return "roc_auc", float(roc_auc_score(positive, output[:, 1]))
    predicted = np.asarray(classes, dtype=object)[np.argmax(output, axis=1)]
    return "accuracy", float(accuracy_score(truth.astype(object), predicted))


def metric_difference_interval(
    candidate: np.ndarray,
    source: np.ndarray,
    labels: pd.Series,
    classes: list[Any] | None,
    *,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Paired-bootstrap percentile interval of the candidate's holdout metric minus the
    source's (both scored on the same resamples, so shared errors cancel).

    >>> labels = pd.Series([0, 1, 0, 1, 1, 0, 1, 0])
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]] * 2)
    >>> metric_difference_interval(p, p, labels, [0, 1])
    (0.0, 0.0)
    """
    from modelpilot.evaluation.bootstrap import percentile_interval, run_bootstrap
    from modelpilot.evaluation.metrics import weighted_auc

    def score(output: np.ndarray) -> Any:
        if classes is None:
            squared = (labels.to_numpy(dtype=float) - output) ** 2
            return lambda w: np.sqrt((w @ squared) / w.sum(axis=1))
        truth = labels.to_numpy()
        if len(classes) == 2:
            positive = (truth == classes[1]).astype(float)
            return lambda w: weighted_auc(positive, output[:, 1], w)
        right = (np.asarray(classes, dtype=object)[np.argmax(output, axis=1)] == truth) * 1.0
        return lambda w: (w @ right) / w.sum(axis=1)

    ours, theirs = score(candidate), score(source)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = run_bootstrap(
            len(labels), {"diff": lambda w: ours(w) - theirs(w)},
            n_bootstrap=n_bootstrap, seed=[seed],
        )  # fmt: skip
    lower, upper, _ = percentile_interval(draws.replicates["diff"], confidence)
    return lower, upper


def load_peak_bytes(load: Callable[[], object]) -> int | None:
    """How much the process's peak resident memory grows while ``load()`` runs (the object
    kept until it is read), or None where Linux's counters are not available.

    The peak (``VmHWM``) is reset to the current resident size first (``/proc/self/clear_refs``
    with 5), so what a package costs at its worst moment of loading is measured, native
    allocations (ONNX Runtime, a compiled library) included, which tracemalloc would miss.
    Call it after a first load, so shared libraries already imported are not counted.
    """
    gc.collect()
    _release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib("VmRSS")
        loaded = load()
        peak = _status_kib("VmHWM")
    except OSError:
        return None
    del loaded
    return max(0, peak - before) * 1024


def _release_free_memory() -> None:
    """Hand memory the allocator keeps free back to the system (glibc's ``malloc_trim``).

    Without it a load is served from memory freed earlier in this process (the measurements
    before it), the resident size does not grow, and an ONNX package read 0 MB at load."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")
