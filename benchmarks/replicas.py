"""`modelpilot serve --replicas 2` against one process, at c = 64: aggregate req/s and p99.

    python benchmarks/replicas.py            # ~3 minutes; needs wrk (benchmarks/serving.py --setup)

Same model, bodies and load generator as benchmarks/serving.py (its ``train`` and ``wrk``):
HistGradientBoostingClassifier on 20 features, one-row JSON records to /predict, wrk with one
thread. Four servers, measured in turns (--rounds rounds of --seconds each, every server once
per round) so a drifting machine hits them alike; figures are medians over rounds:

* 1 and 2 replicas pinned to CPU 1 (wrk on CPU 0): the same single core, so the second
  process can only cost (two event loops share a core) and shows the overhead;
* 1 and 2 replicas on CPUs 0-1 (wrk still on CPU 0, sharing it): the second replica gets a
  core, but the load generator takes part of it.

A machine with two cores cannot show scale-out cleanly: the load generator needs a core of
its own. Each result records the cores other processes used meanwhile ("foreign").
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import System, start, stop, train, wait_quiet, wrk

CONNECTIONS = 64


def systems(work: Path) -> list[tuple[System, str]]:
    """The four configurations: a `modelpilot serve` command and the CPUs it is pinned to."""
    home = {"MODELPILOT_HOME": str(work / "home")}
    found = []
    for n, (cpus, replicas) in enumerate([(c, r) for c in ("1", "0-1") for r in (1, 2)]):
        url = f"http://127.0.0.1:{8400 + n}"
        cmd = [sys.executable, "-m", "modelpilot.cli.main", "serve", "hgb/1", "--port"]
        cmd += [str(8400 + n), *(["--replicas", str(replicas)] if replicas > 1 else [])]
        name = f"{replicas} replica{'s' if replicas > 1 else ''}, CPU {cpus}"
        health, predict = f"{url}/v2/health/ready", f"{url}/predict/hgb"
        found.append((System(name, cmd, health, predict, "records", home), cpus))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-foreign", type=float, default=0.5, help="cores; wait below")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mp-replicas-bench-"))
    chosen = systems(work)
    runs: dict[str, list[dict[str, float]]] = {s.name: [] for s, _ in chosen}
    procs = []
    try:
        train(work)
        for system, cpus in chosen:
            procs.append(start(system, work, cpus))
        for _ in range(args.rounds):
            for (system, _), proc in zip(chosen, procs, strict=True):
                wait_quiet(proc.pid, args.max_foreign)
                body = work / f"{system.body}.json"
                runs[system.name].append(wrk(system.url, body, CONNECTIONS, args.seconds, proc.pid))
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    report(runs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


def report(runs: dict[str, list[dict[str, float]]]) -> None:
    print(f"\nc = {CONNECTIONS}, wrk (1 thread) pinned to CPU 0; medians over rounds")
    print(
        f"{'server':24s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} {'foreign':>8s}"
    )
    for name, results in runs.items():
        med = {
            k: float(np.median([r[k] for r in results]))
            for k in ("rps", "p50_ms", "p99_ms", "foreign")
        }
        errors = sum(r["errors"] for r in results)
        print(
            f"{name:24s} {med['rps']:8.0f} {med['p50_ms']:8.1f} {med['p99_ms']:8.1f} "
            f"{errors:7.0f} {med['foreign']:8.2f}   rounds: {[round(r['rps']) for r in results]}"
        )


if __name__ == "__main__":
    main()
