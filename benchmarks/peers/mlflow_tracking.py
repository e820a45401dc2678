"""MLflow side of benchmarks/tracking.py; runs inside MLflow's own venv and prints JSON.

Usage: python mlflow_tracking.py --uri URI --points N --deadline-s S [--async-points M]
Cases mirror modelpilot's: one-by-one log_metric (sync), async log_metric, log_batch of 1,000.
Every case reads its points back and reports how many it found. The one-by-one cases stop at
the deadline; the async case logs at most ``--async-points`` (queueing is instant, and
end_run then waits for the queue to drain: 10,000 points took 330 s through `mlflow server`).
"""

from __future__ import annotations

import argparse
import json
import time

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient


def one_by_one(n: int, deadline_s: float, synchronous: bool) -> tuple[float, str, int]:
    start = time.perf_counter()
    done = 0
    with mlflow.start_run() as run:
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=synchronous)
            done += 1
            if time.perf_counter() - start > deadline_s:
                break
    return time.perf_counter() - start, run.info.run_id, done


def batched(n: int, batch: int) -> tuple[float, str, int]:
    client = MlflowClient()
    start = time.perf_counter()
    with mlflow.start_run() as run:
        stamp = int(time.time() * 1000)
        for b in range(0, n, batch):
            metrics = [Metric("loss", 1.0 / (i + 1), stamp, i) for i in range(b, min(n, b + batch))]
            client.log_batch(run.info.run_id, metrics=metrics)
    return time.perf_counter() - start, run.info.run_id, n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--deadline-s", type=float, default=30.0)
    parser.add_argument("--async-points", type=int, default=1_000)
    args = parser.parse_args()
    mlflow.set_tracking_uri(args.uri)
    mlflow.set_experiment("bench")
    one_by_one(50, 10, True)  # warm-up: schema, connections
    results = {}
    cases = {
        "one_by_one": lambda: one_by_one(args.points, args.deadline_s, True),
        "one_by_one_async": lambda: one_by_one(
            min(args.points, args.async_points), args.deadline_s, False
        ),
        "batched": lambda: batched(args.points, 1000),
    }
    for name, case in cases.items():
        seconds, run_id, done = case()
        found = len(MlflowClient().get_metric_history(run_id, "loss"))
        results[name] = {
            "points": done,
            "seconds": seconds,
            "per_s": done / seconds,
            "read_back": found,
        }
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
