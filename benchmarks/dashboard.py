"""Dashboard server time at scale: 100,000 runs and one run with 1,000,000 metric points on
PostgreSQL (issue 15: the runs page and the run page under 300 ms).

    python benchmarks/dashboard.py                   # MODELPILOT_TEST_POSTGRES_URI or --pg-uri
    python benchmarks/dashboard.py --runs 20000 --points 200000 --requests 10

Fills a fresh PostgreSQL schema (dropped at the end) by COPY: --runs runs as
benchmarks/search.py writes them (two params, two metrics of three points, a tag), plus one
newer run "long" with --points points of ``loss`` (and 100 of ``auc``), so it is on the first
page of the runs table. Then asks the dashboard's ASGI app in this process (token auth on,
a Bearer token) for each page --requests times after one warm-up request, and prints the
median and the 95th percentile of the server time (the app's whole answer, no network):

  runs page               /ui/runs (every experiment, newest first, 50 a page)
  runs page, sorted       /ui/runs?experiment=search-bench&order=metrics.auc DESC
  run page (1M points)    /ui/runs/<long>
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import fill
from tracking import _pg_schema_uri

TARGET_MS = 300.0
# The series summaries of every point COPY wrote (the write path keeps them per batch; this is
# what migration 0011 does for points logged before it).
SUMMARISE = """
INSERT INTO run_metric_buckets
    (run_id, key, width, bucket, min_value, max_value, first_step, last_step, points)
SELECT run_id, key, {width}, {bucket}, MIN(value), MAX(value), MIN(step), MAX(step), COUNT(*)
FROM run_metrics GROUP BY run_id, key{group}
"""
LONG_START_MS = 1_800_000_000_000  # after every run search.fill writes: the newest run


def add_long_run(store_uri: str, points: int) -> str:
    """One run with ``points`` points of ``loss`` and 100 of ``auc``, by COPY; then the
    summaries of every series in the store; the run's id."""
    from modelpilot.store import Store
    from modelpilot.tracking import service
    from modelpilot.tracking.points import SUMMARY_WIDTHS

    store = Store.open(store_uri)
    experiment = service.get_or_create_experiment(store, "search-bench")
    run_id = uuid.uuid4().hex
    metrics, latest = io.StringIO(), io.StringIO()
    for key, n in (("loss", points), ("auc", 100)):
        for step in range(n):
            value = 1.0 / (1 + step / 1000) + (step % 97) / 10_000
            metrics.write(f"{run_id}\t{key}\t{value!r}\t{step}\t{LONG_START_MS + step}\n")
        latest.write(f"{run_id}\t{key}\t{value!r}\t{n - 1}\t{LONG_START_MS + n - 1}\n")
    columns = "run_id, key, value, step, timestamp_ms"
    with store.write() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        run_row = f"{run_id}\t{experiment.id}\tlong\tFINISHED\t{LONG_START_MS}\t\\N\t{{}}\n"
        with cursor.copy(
            "COPY runs (id, experiment_id, name, status, start_ms, end_ms, environment) FROM STDIN"
        ) as copy:
            copy.write(run_row)
        with cursor.copy(f"COPY run_metrics ({columns}) FROM STDIN") as copy:
            copy.write(metrics.getvalue())
        with cursor.copy(f"COPY run_latest_metrics ({columns}) FROM STDIN") as copy:
            copy.write(latest.getvalue())
        cursor.close()
    with store.write() as conn:
        for width in SUMMARY_WIDTHS:
            bucket = "0" if width == 0 else f"step / {width}"
            group = "" if width == 0 else f", {bucket}"
            conn.exec_driver_sql(SUMMARISE.format(width=width, bucket=bucket, group=group))
    with store.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    store.close()
    return run_id


def time_pages(
    store_uri: str, home: Path, pages: list[tuple[str, str]], requests: int
) -> list[tuple[str, float, float, int, int]]:
    """(page, median ms, p95 ms, status, charts drawn) of each page, asked of the app in
    this process."""
    from fastapi.testclient import TestClient

    from modelpilot.artifacts.local import LocalArtifactStore
    from modelpilot.identity import Role
    from modelpilot.server.app import create_app
    from modelpilot.server.auth import create_token
    from modelpilot.store import Store

    store = Store.open(store_uri)
    token = create_token(store, "bench", Role.VIEWER).token
    app = create_app(store, artifacts=LocalArtifactStore(home / "artifacts"), home=home)
    rows = []
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for name, path in pages:
            timings, status, charts = [], 0, 0
            for _ in range(requests + 1):  # the first warms caches and is not counted
                start = time.perf_counter()
                reply = client.get(path)
                timings.append((time.perf_counter() - start) * 1000)
                status, charts = reply.status_code, reply.text.count("<polyline")
            counted = sorted(timings[1:])
            p95 = counted[min(len(counted) - 1, round(0.95 * (len(counted) - 1)))]
            rows.append((name, statistics.median(counted), p95, status, charts))
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-uri", default=os.environ.get("MODELPILOT_TEST_POSTGRES_URI"))
    args = parser.parse_args()
    if not args.pg_uri:
        sys.exit("Needs PostgreSQL: --pg-uri or MODELPILOT_TEST_POSTGRES_URI.")
    uri, drop = _pg_schema_uri(args.pg_uri)
    home = Path(tempfile.mkdtemp(prefix="mp-dashboard-bench-"))
    try:
        start = time.perf_counter()
        fill(uri, args.runs, args.seed)
        long_id = add_long_run(uri, args.points)
        took = time.perf_counter() - start
        print(f"filled {args.runs:,} runs + one of {args.points:,} points in {took:.1f} s (COPY)")
        pages = [
            ("runs page", "/ui/runs"),
            ("runs page, sorted", "/ui/runs?experiment=search-bench&order=metrics.auc+DESC"),
            (f"run page ({args.points:,} points)", f"/ui/runs/{long_id}"),
        ]
        results = time_pages(uri, home, pages, args.requests)
    finally:
        drop()  # type: ignore[operator]
    print(f"\ndashboard server time (PostgreSQL, in-process ASGI), {args.requests} requests each:")
    for name, median, p95, status, charts in results:
        verdict = "under" if p95 < TARGET_MS else "NOT under"
        print(
            f"  {name:28s} median {median:7.1f} ms   p95 {p95:7.1f} ms   {verdict} "
            f"{TARGET_MS:.0f} ms   (HTTP {status}, {charts} charts)"
        )


if __name__ == "__main__":
    main()
