"""Instructions a request, counted: the onnx candidate's server against the no-op ceiling.

    python benchmarks/serving_instructions.py            # ~5 minutes; needs valgrind and wrk
    python benchmarks/serving_instructions.py --setup    # once: apt-get install valgrind wrk

Why: issue 16's "onnx >= 75% of the no-op ceiling at c=32" is a ratio of two req/s figures,
and on a shared host the wall clock moves it by +-0.05 between runs of the same code (the
host's speed swings 30-40% within an hour; docs/optimize.md). Instructions do not move with
the host. Each server of benchmarks/serving.py (same model, same body, same stack) runs pinned
to CPU 1 under ``valgrind --tool=callgrind`` with instrumentation off; wrk (CPU 0, c=32)
warms it up, instrumentation goes on for --seconds of wrk, and the count over that window
divided by the requests answered is its cost a request, ceiling included. The batches run on
the event loop as they do at full speed (``MODELPILOT_SERVE_INLINE_PREDICT_MS=1000``: under
valgrind a batch takes longer than the 2 ms that would move it to the worker thread).

Instructions are not seconds (a cache miss costs more than an add): the ratio printed is the
ceiling's instructions over the server's, which tracked the wall-clock ratio on a quiet, fast
host (0.713 against 0.71, 2026-12-02); batch composition varies a little under valgrind, so
two runs of the same code agree to ~1%.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # the shared model, bodies and server commands (benchmarks/serving.py)

TARGET = 0.75
DEFAULT_SERVERS = (serving.ONNX, serving.CEILING, "modelpilot (batching)")


def count(system: serving.System, work: Path, warm_s: float, seconds: float) -> dict[str, float]:
    """One server under callgrind: instructions and requests over a measured wrk window."""
    out = work / f"callgrind.{re.sub(r'[^a-z0-9]+', '-', system.name.lower())}"
    env = {
        **os.environ,
        **system.env,
        "OMP_NUM_THREADS": "1",
        "MODELPILOT_SERVE_INLINE_PREDICT_MS": "1000",
    }
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    proc = subprocess.Popen(
        ["taskset", "-c", "1", *valgrind, *system.cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    body = work / f"{system.body}.json"
    try:
        serving.wait_health(system.health, proc, limit_s=600)  # startup under valgrind: minutes
        serving.wrk(system.url, body, 32, warm_s, proc.pid)
        control = ["callgrind_control"]
        subprocess.run([*control, "-i", "on", str(proc.pid)], check=True, capture_output=True)
        measured = serving.wrk(system.url, body, 32, seconds, proc.pid)
        subprocess.run([*control, "-i", "off", str(proc.pid)], check=True, capture_output=True)
        subprocess.run([*control, "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    requests = measured["requests"]
    dumps = sorted(work.glob(f"{out.name}.*"), key=lambda p: p.stat().st_mtime)
    return {"instructions_per_request": _total(dumps[-1]) / requests, "requests": requests}


def _total(dump: Path) -> int:
    """The instruction total of a callgrind dump (its ``totals:`` line; ``summary:`` reads 0
    in a dump that ``callgrind_control -d`` asked for)."""
    totals = [line for line in dump.read_text().splitlines() if line.startswith("totals:")]
    if not totals:
        raise RuntimeError(f"{dump} has no instruction total")
    return int(totals[-1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setup", action="store_true", help="apt-get install valgrind wrk")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured wrk window")
    parser.add_argument("--warm", type=float, default=5.0, help="wrk before counting")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--keep", type=Path, help="copy the callgrind dumps here (for callgrind_annotate)"
    )
    parser.add_argument(
        "--only", help="comma-separated server names (default: onnx, ceiling, scikit-learn)"
    )
    args = parser.parse_args()
    if args.setup or not (shutil.which("valgrind") and shutil.which("wrk")):
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind", "wrk"], check=True)
    with tempfile.TemporaryDirectory(prefix="mp-instr-") as tmp:
        work = Path(tmp)
        serving.train(work)
        chosen = {s.name: s for s in serving.systems(work, skip_peers=True)}
        names = args.only.split(",") if args.only else list(DEFAULT_SERVERS)
        results = {name: count(chosen[name], work, args.warm, args.seconds) for name in names}
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for dump in work.glob("callgrind.*"):
                shutil.copy2(dump, args.keep / dump.name)
    for name, result in results.items():
        print(f"  {name:38s} {result['instructions_per_request']:10,.0f} instructions a request")
    if serving.CEILING not in results or serving.ONNX not in results:
        return
    share = (
        results[serving.CEILING]["instructions_per_request"]
        / results[serving.ONNX]["instructions_per_request"]
    )
    verdict = "yes" if share >= TARGET else "NO"
    print(f"onnx >= {TARGET} x ceiling by instructions at c=32 (is {share:.3f}): {verdict}")
    if args.json:
        args.json.write_text(json.dumps({"servers": results, "onnx_share": share}, indent=1))


if __name__ == "__main__":
    main()
