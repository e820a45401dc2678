"""Shared timing/RSS harness for the drift baselines (stdlib + numpy/pandas only)."""

import json
import os
import pathlib
import resource
import statistics
import sys
import tempfile
import time

DATA = pathlib.Path(os.environ.get("DRIFT_DATA", tempfile.gettempdir() + "/drift/data"))
NUM = [f"num_{j:02d}" for j in range(20)]
CAT = [f"cat_{j}" for j in range(5)]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_parquet(n):
    import pandas as pd

    t = time.perf_counter()
    ref = pd.read_parquet(DATA / f"ref_{n}.parquet")
    cur = pd.read_parquet(DATA / f"cur_{n}.parquet")
    return ref, cur, time.perf_counter() - t


def load_npz(n):
    import numpy as np

    t = time.perf_counter()
    r = np.load(DATA / f"ref_{n}.npz")
    c = np.load(DATA / f"cur_{n}.npz")
    out = (r["num"], r["cat"], c["num"], c["cat"])
    return out, time.perf_counter() - t


def truth(n):
    return json.loads((DATA / f"truth_{n}.json").read_text())


def timed(fn, repeats=None, warmup=None):
    """warm-up run(s) (untimed), then `repeats` timed runs -> (median, all_times, last_result).

    BENCH_REPEATS / BENCH_WARMUP env vars override the defaults 3 / 1."""
    repeats = int(os.environ.get("BENCH_REPEATS", 3)) if repeats is None else repeats
    warmup = int(os.environ.get("BENCH_WARMUP", 1)) if warmup is None else warmup
    res = None
    for _ in range(warmup):
        res = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, res


def score(flagged, n):
    t = truth(n)
    fl = set(flagged)
    tp = sorted(fl & set(t["drifted"]))
    fp = sorted(fl & set(t["not_drifted"]))
    fn = sorted(set(t["drifted"]) - fl)
    return {"tp": len(tp), "fp": len(fp), "fn": len(fn), "false_positives": fp, "missed": fn}


def emit(obj):
    obj["peak_rss_mb_in_process"] = round(peak_rss_mb(), 1)
    print("RESULT_JSON " + json.dumps(obj, default=str))
    sys.stdout.flush()
