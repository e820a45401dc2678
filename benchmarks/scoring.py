"""Batch scoring at scale: 5 million rows x 20 columns through `modelpilot score`.

    python benchmarks/scoring.py [--rows 5000000]

Prints rows/s next to the in-process limit (one predict_proba call over 100,000 rows on one
core, times the cores used) and the peak resident memory of the whole process tree, sampled
every 100 ms from /proc (target: under 1 GiB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def tree_rss_bytes(root: int) -> int:
    """Resident memory of a process and all its descendants."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelpilot.config import Settings
    from modelpilot.workspace import Workspace

    work = Path(tempfile.mkdtemp(prefix="mp-score-bench-"))
    columns = [f"f{i}" for i in range(20)]
    x, y = make_classification(n_samples=50_000, n_features=20, random_state=0)
    model = HistGradientBoostingClassifier(random_state=0).fit(pd.DataFrame(x, columns=columns), y)
    ws = Workspace(Settings(home=work / "home"))
    ws.log_model(model, "hgb", input_example=pd.DataFrame(x[:5], columns=columns))
    ws.close()
    source = work / "input.parquet"
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(source, pa.schema([(c, pa.float64()) for c in columns])) as writer:
        for start in range(0, args.rows, 500_000):
            n = min(500_000, args.rows - start)
            writer.write_table(pa.table({c: rng.normal(size=n) for c in columns}))
    block = pd.DataFrame(rng.normal(size=(100_000, 20)), columns=columns)
    os.sched_setaffinity(0, {0})
    model.predict_proba(block)  # warm-up
    began = time.perf_counter()
    for _ in range(3):
        model.predict_proba(block)
    limit = 300_000 / (time.perf_counter() - began)
    os.sched_setaffinity(0, {0, 1})
    env = {**os.environ, "MODELPILOT_HOME": str(work / "home")}
    began = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelpilot.cli.main",
            "score",
            "hgb/1",
            str(source),
            "-o",
            str(work / "scored.parquet"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.1):
            peak = max(peak, tree_rss_bytes(proc.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = proc.wait()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - began
    scored = pq.ParquetFile(work / "scored.parquet").metadata.num_rows if code == 0 else 0
    print(
        f"rows scored: {scored:,} of {args.rows:,} (exit {code}) in {seconds:.1f} s = "
        f"{scored / seconds:,.0f} rows/s"
    )
    print(
        f"in-process limit: {limit:,.0f} rows/s on one core, {2 * limit:,.0f} on two (predict only)"
    )
    print(f"peak RSS of the process tree: {peak / 2**20:,.0f} MiB (target < 1024 MiB)")


if __name__ == "__main__":
    main()
