"""The edge profile's worker process (``python -m modelpilot.profile_worker REF ROWS CALLS
MEMORY_MB CPU``), started fresh by :func:`modelpilot.optimization.profile.profile_edge`.

It pins itself to one CPU and caps its address space before importing modelpilot, loads the
version through the SDK (so the cold start includes the imports and the load), answers one
row, then times ``CALLS`` one-row calls. Output: two JSON lines, the moment of the first
answer (``time.perf_counter``, the system's monotonic clock on Linux) and then the timings
with the peak resident size. An entry point: nothing imports it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def main(ref: str, data: str, calls: int, memory_mb: int, cpu: int) -> None:
    """In the fresh interpreter: pin, cap, load, answer once, then time batch-1 calls."""
    os.sched_setaffinity(0, {cpu})
    cap = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import pandas as pd

    import modelpilot as mp

    model = mp.load_model(ref)
    rows = model.prepare(pd.read_json(Path(data), orient="records", dtype=False))
    call = model.predict_proba_prepared if model.signature.is_classifier else model.predict_prepared
    call(rows.iloc[:1].reset_index(drop=True))
    print(json.dumps({"first_answer_s": time.perf_counter()}), flush=True)
    singles = [rows.iloc[[i % len(rows)]].reset_index(drop=True) for i in range(calls)]
    timings = []
    for one in singles:
        start = time.perf_counter_ns()
        call(one)
        timings.append((time.perf_counter_ns() - start) / 1e6)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"timings_ms": timings, "peak_mb": peak}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
