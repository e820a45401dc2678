"""Ray Serve's HTTP proxy against modelpilot's own data plane, one core each, at c = 32.

    python benchmarks/ray_serve_proxy.py --python /work/main/.venvs/rayserve/bin/python

The question behind ``modelpilot serve --executor ray``: should replicas on a Ray cluster sit
behind Ray Serve's proxy (and run the model in Ray Serve deployments), or serve HTTP
themselves (modelpilot's own data plane, SO_REUSEPORT)? The proxy may cost at most 20% of
throughput. Ray Serve cannot live in modelpilot's venv (ray[serve] upgrades starlette and
protobuf), so it runs from a separate venv (``--python``; created with
``python -m venv .venvs/rayserve && .venvs/rayserve/bin/pip install 'ray[serve]==<our ray>'
scikit-learn pandas``).

Same model and body as benchmarks/serving.py (its ``train``: HistGradientBoostingClassifier
on 20 features, one JSON record per request), same wrk + post.lua, one wrk thread pinned to
CPU 0, every server's whole process tree pinned to CPU 1:

* ``modelpilot serve hgb/1``: /predict/hgb, batching and the prediction log on (defaults);
* Ray Serve (``serving_peers/ray_serve_app.py``, one replica per application behind the
  proxy): /predict (predict_proba per request), /batched (``@serve.batch``, 64 rows, no
  wait, like modelpilot's batching), /noop (proxy + replica, no model: Ray Serve's ceiling).

Each round starts one server, measures its routes for --seconds each, stops it, then the
other (their order alternating), so an idle Ray cluster never shares the core with modelpilot.
Printed: medians over rounds of req/s, p50, p99, and each Ray route's ratio to modelpilot.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import VENVS, System, start, stop, train, wait_quiet, wrk

CONNECTIONS = 32
RAY_ROUTES = ("predict", "batched", "noop")
APP = Path(__file__).resolve().parent / "serving_peers" / "ray_serve_app.py"


def groups(work: Path, python: Path) -> list[list[System]]:
    """Servers to measure, one list per process: its routes as Systems."""
    home = {"MODELPILOT_HOME": str(work / "home")}
    ours = [sys.executable, "-m", "modelpilot.cli.main", "serve", "hgb/1", "--port", "8501"]
    mp = System(
        "modelpilot data plane", ours, "http://127.0.0.1:8501/v2/health/ready",
        "http://127.0.0.1:8501/predict/hgb", "records", home,
    )  # fmt: skip
    ray_cmd = [str(python), str(APP), "8502"]
    ray = [
        System(f"ray serve /{route}", ray_cmd, "http://127.0.0.1:8502/noop",
               f"http://127.0.0.1:8502/{route}", "records")
        for route in RAY_ROUTES
    ]  # fmt: skip
    return [ray, [mp]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", type=Path, default=VENVS / "rayserve" / "bin" / "python")
    parser.add_argument("--seconds", type=float, default=8.0, help="per round and route")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-foreign", type=float, default=0.5, help="cores; wait below")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not args.python.exists():
        raise SystemExit(f"No Ray Serve venv at {args.python}: see this script's docstring.")
    work = Path(tempfile.mkdtemp(prefix="mp-rayserve-bench-"))
    runs: dict[str, list[dict[str, float]]] = {}
    try:
        train(work)
        order = groups(work, args.python)
        for n in range(args.rounds):
            for group in order if n % 2 == 0 else order[::-1]:
                proc = start(group[0], work)
                try:
                    for system in group:
                        wait_quiet(proc.pid, args.max_foreign)
                        body = work / f"{system.body}.json"
                        wrk(system.url, body, CONNECTIONS, 2, proc.pid)  # warm this route
                        result = wrk(system.url, body, CONNECTIONS, args.seconds, proc.pid)
                        runs.setdefault(system.name, []).append(result)
                        print(f"round {n + 1} {system.name}: {result['rps']:.0f} req/s", flush=True)
                finally:
                    stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(runs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


def report(runs: dict[str, list[dict[str, float]]]) -> None:
    """Medians over rounds, and each server's ratio to modelpilot (median of per-round ratios)."""
    ours = runs["modelpilot data plane"]
    print(f"\nc = {CONNECTIONS}, wrk (1 thread) on CPU 0, servers on CPU 1; medians over rounds")
    print(f"{'server':26s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'errors':>6s} "
          f"{'foreign':>7s} {'ratio':>6s}  rounds (req/s)")  # fmt: skip
    for name, results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        ratio = statistics.median(r["rps"] / o["rps"] for r, o in zip(results, ours, strict=True))
        print(
            f"{name:26s} {med['rps']:8.0f} {med['p50_ms']:7.1f} {med['p99_ms']:7.1f} "
            f"{sum(r['errors'] for r in results):6.0f} {med['foreign']:7.2f} {ratio:6.2f}  "
            f"{[round(r['rps']) for r in results]}"
        )


if __name__ == "__main__":
    main()
