"""Batch scoring at scale: 5 million rows x 20 columns through `modelpilot score`.

    python benchmarks/scoring.py [--rows 5000000] [--executor local|ray|both]

Prints rows/s next to the in-process limit (one predict_proba call over 100,000 rows on one
core, times the cores used) and the peak resident memory of the whole process tree, sampled
every 100 ms from /proc (target: under 1 GiB). With ``--executor ray`` (or ``both``) the same
file is scored by `modelpilot score --executor ray` on the same 2 cores twice: on a local Ray
cluster the command starts itself (its start-up in the time; a 1,000-row run measures that
fixed cost alone), and on a running cluster (`ray start --head --num-cpus 2`, as a team with a
cluster runs it: `--ray-address`), with the peak memory of each Ray scoring actor; the outputs
are compared with the local scorer's.
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


def process_rss(root: int) -> dict[int, tuple[str, int]]:
    """(name, resident bytes) of a process, each of its descendants and every Ray scoring
    actor of this machine."""
    out: dict[int, tuple[str, int]] = {}
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            name = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        out[int(entry)] = (name, int(fields[21]) * os.sysconf("SC_PAGE_SIZE"))
    tree, stack = {}, [root]
    while stack:
        pid = stack.pop()
        if pid in out:
            tree[pid] = out[pid]
        stack.extend(child for child, parent in parents.items() if parent == pid)
    # scoring actors of a running cluster are the raylet's children, not the command's
    tree.update({pid: item for pid, item in out.items() if "ScoreActor" in item[0]})
    return tree


def run_score(
    env: dict[str, str], source: Path, target: Path, extra: list[str]
) -> tuple[int, float, int, dict[int, tuple[str, int]]]:
    """Exit code, seconds, peak RSS of the tree, and each process's peak (name, bytes)."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelpilot.cli.main", "score", "hgb/1", str(source), "-o",
         str(target), *extra],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    peak = 0
    each: dict[int, tuple[str, int]] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.1):
            tree = process_rss(proc.pid)
            peak = max(peak, sum(rss for _, rss in tree.values()))
            for pid, (name, rss) in tree.items():
                each[pid] = (name, max(rss, each.get(pid, (name, 0))[1]))

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = proc.wait()
    stop.set()
    sampler.join()
    return code, time.perf_counter() - began, peak, each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--executor", choices=["local", "ray", "both"], default="local")
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
    print(
        f"in-process limit: {limit:,.0f} rows/s on one core, {2 * limit:,.0f} on two (predict only)"
    )
    rates: dict[str, float] = {}
    running: dict[str, float] = {}  # rows / (time - the 1,000-row run's time)
    runs = {"local": ["--executor", "local"]}
    if args.executor in ("ray", "both"):
        runs["ray (cluster started by the command)"] = ["--executor", "ray"]
        runs["ray (running cluster)"] = ["--executor", "ray", "--ray-address", "127.0.0.1:6389"]
    # `ray start` turns token authentication on when ~/.ray/auth_token exists (a local cluster
    # writes it), and a client of an explicit address sends the token only in token mode.
    token_mode = {**env, "RAY_AUTH_MODE": "token"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    if args.executor == "ray":
        del runs["local"]
    try:
        for label, extra in runs.items():
            target = work / f"scored-{len(rates)}.parquet"
            if "running" in label:  # after the run without an address: ray.init() would join it
                subprocess.run(
                    [ray_cli, "start", "--head", "--port", "6389", "--num-cpus", "2",
                     "--include-dashboard", "false", "--disable-usage-stats"],
                    env=token_mode, check=True, capture_output=True,
                )  # fmt: skip
                env = token_mode
            tiny = work / "tiny.parquet"
            first = next(pq.ParquetFile(source).iter_batches(batch_size=1_000))
            pq.write_table(pa.Table.from_batches([first]), tiny)
            _, fixed, _, _ = run_score(env, tiny, work / "tiny-out.parquet", extra)
            print(f"{label}: 1,000 rows (the fixed cost: start-up, actors, model loads) "
                  f"took {fixed:.1f} s")  # fmt: skip
            code, seconds, peak, each = run_score(env, source, target, extra)
            scored = pq.ParquetFile(target).metadata.num_rows if code == 0 else 0
            rates[label] = scored / seconds
            running[label] = scored / max(seconds - fixed, 1e-9)
            print(
                f"{label}: {scored:,} of {args.rows:,} rows (exit {code}) in {seconds:.1f} s = "
                f"{scored / seconds:,.0f} rows/s ({running[label]:,.0f} once running); peak "
                f"RSS of the process tree and actors {peak / 2**20:,.0f} MiB"
            )
            actors = sorted(rss for name, rss in each.values() if "ScoreActor" in name)
            if actors:
                shown = ", ".join(f"{r / 2**20:,.0f} MiB" for r in actors)
                print(f"  peak RSS per scoring actor: {shown}")
    finally:
        if "ray (running cluster)" in runs:  # stops every Ray of this machine, as `ray stop` does
            subprocess.run([ray_cli, "stop"], env=env, capture_output=True, check=False)
    if "local" in rates:
        expected = pq.read_table(work / "scored-0.parquet")
        for index, label in enumerate(rates):
            if index:
                same = pq.read_table(work / f"scored-{index}.parquet").equals(expected)
                print(f"{label} / local rows/s: {rates[label] / rates['local']:.2f} end to end, "
                      f"{running[label] / running['local']:.2f} once running; "
                      f"same output: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
