"""Run search at scale: 100,000 runs on PostgreSQL, searched through `modelpilot server`.

    python benchmarks/search.py                      # MODELPILOT_TEST_POSTGRES_URI or --pg-uri
    python benchmarks/search.py --runs 20000 --repeat 3

Fills a fresh PostgreSQL schema with --runs runs (two params, two metrics of three points
each, a tag) by COPY, so the set-up takes seconds rather than the hours the API would, then
times through a real server (token auth on), first page of 100 unless said otherwise:

  metric filter + order   filter "metrics.auc > 0.9", order "metrics.auc DESC"
  deep page               the same, page 50 (offset 4,900)
  param filter + order    filter "params.model = 'gbm' and metrics.loss < 0.2", order start_time
  no filter               newest first

The issue's target: the first case under 300 ms (MLflow users report minutes at 30,000 runs:
mlflow#2730). MLflow is compared only when .venvs/mlflow exists; it is never installed here.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tracking import VENV, _pg_schema_uri, start_modelpilot_server

CASES = [
    ("metric filter + order", "metrics.auc > 0.9", ["metrics.auc DESC"], 0),
    ("deep page (50)", "metrics.auc > 0.9", ["metrics.auc DESC"], 4900),
    ("param filter + order", "params.model = 'gbm' and metrics.loss < 0.2", ["start_time"], 0),
    ("no filter", "", [], 0),
]


def fill(store_uri: str, runs: int, seed: int) -> None:
    """``runs`` runs in one experiment, written with COPY straight into the tables."""
    from sqlalchemy import text

    from modelpilot.store import Store
    from modelpilot.tracking import service

    store = Store.open(store_uri)
    experiment = service.get_or_create_experiment(store, "search-bench")
    rng = random.Random(seed)
    tables: dict[str, io.StringIO] = {
        name: io.StringIO()
        for name in ("runs", "run_params", "run_tags", "run_metrics", "run_latest_metrics")
    }
    start = 1_700_000_000_000
    for i in range(runs):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        begin = start + i * 1000
        tables["runs"].write(
            f"{run_id}\t{experiment.id}\trun-{i}\tFINISHED\t{begin}\t{begin + 500}\t{{}}\n"
        )
        model = rng.choice(["gbm", "linear", "forest"])
        tables["run_params"].write(f"{run_id}\tmodel\t{model}\n{run_id}\tdepth\t{i % 12}\n")
        tables["run_tags"].write(f"{run_id}\tteam\tteam-{i % 7}\n")
        for key in ("auc", "loss"):
            values = [rng.random() for _ in range(3)]
            for step, value in enumerate(values):
                tables["run_metrics"].write(f"{run_id}\t{key}\t{value!r}\t{step}\t{begin}\n")
            tables["run_latest_metrics"].write(f"{run_id}\t{key}\t{values[-1]!r}\t2\t{begin}\n")
    columns = {
        "runs": "id, experiment_id, name, status, start_ms, end_ms, environment",
        "run_params": "run_id, key, value",
        "run_tags": "run_id, key, value",
        "run_metrics": "run_id, key, value, step, timestamp_ms",
        "run_latest_metrics": "run_id, key, value, step, timestamp_ms",
    }
    with store.write() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for name, buffer in tables.items():
            with cursor.copy(f"COPY {name} ({columns[name]}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
        cursor.close()
    with store.write() as conn:
        conn.execute(text("ANALYZE"))
    store.close()


def time_searches(url: str, token: str, repeat: int) -> list[tuple[str, float, int]]:
    """(case, median ms, runs on the page) for each case, through the HTTP client."""
    from modelpilot.client import HttpTracking
    from modelpilot.tracking.local import encode_page_token

    client = HttpTracking(url, token=token)
    rows = []
    for name, filter, order_by, offset in CASES:
        token_ = encode_page_token(offset) if offset else None
        timings = []
        found = 0
        for _ in range(repeat + 1):  # the first one warms caches and is not counted
            start = time.perf_counter()
            page = client.search_runs(
                "search-bench", filter, order_by, page_token=token_, max_results=100
            )
            timings.append((time.perf_counter() - start) * 1000)
            found = len(page.runs)
        rows.append((name, statistics.median(timings[1:]), found))
    client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-uri", default=os.environ.get("MODELPILOT_TEST_POSTGRES_URI"))
    args = parser.parse_args()
    if not args.pg_uri:
        sys.exit("Needs PostgreSQL: --pg-uri or MODELPILOT_TEST_POSTGRES_URI.")
    from modelpilot.server.auth import Role, create_token
    from modelpilot.store import Store

    uri, drop = _pg_schema_uri(args.pg_uri)
    home = Path(tempfile.mkdtemp(prefix="mp-search-bench-"))
    try:
        start = time.perf_counter()
        fill(uri, args.runs, args.seed)
        print(f"filled {args.runs:,} runs in {time.perf_counter() - start:.1f} s (COPY)")
        store = Store.open(uri)
        token = create_token(store, "bench", Role.VIEWER).token
        store.close()
        proc, url = start_modelpilot_server(uri, home)
        try:
            results = time_searches(url, token, args.repeat)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        drop()  # type: ignore[operator]
    print(f"\nmodelpilot server (PostgreSQL), {args.runs:,} runs, median of {args.repeat}:")
    for name, ms, found in results:
        print(f"  {name:24s} {ms:8.1f} ms   {found} runs on the page")
    target = results[0][1]
    print(f"\nmetric filter + order: {target:.0f} ms (target < 300 ms)")
    if (VENV / "bin" / "python").exists():
        print("MLflow found in .venvs/mlflow, but this benchmark does not fill its store yet.")
    else:
        print(f"MLflow not compared: {VENV} is not installed (this benchmark never installs it).")


if __name__ == "__main__":
    main()
