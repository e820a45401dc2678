"""Instructions a request in the data plane alone: for trying one hot-path change at a time.

    python benchmarks/serving_plane_instructions.py              # ~3 minutes; needs valgrind
    python benchmarks/serving_plane_instructions.py --model hgb/1 --work /tmp/mp-plane

Why: benchmarks/serving_instructions.py counts whole servers under wrk (the figure issue 16's
target is read from), but it takes ~5 minutes and its batch composition varies by ~1%. This
counts :meth:`DataPlane.predict_payload` only, in process, on uvloop: 32 concurrent requests
per round, each a task awaiting it from one coroutine as the server's ASGI path does (one
batch of 32 rows, as at c=32), the same model and one-row body as
benchmarks/serving.py. The process runs under ``valgrind --tool=callgrind`` twice, for
--rounds and 4 x --rounds rounds; the difference of the two totals over the difference of the
requests is the plane's cost a request (start-up, imports and loading cancel out). Two runs
of the same code agree to ~1,000 instructions (~1%): a cut must be bigger than that to show.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CALLERS = 32


def child(work: Path, model: str, rounds: int) -> None:
    """Under callgrind: load ``model`` into a data plane and answer ``rounds`` x 32 requests."""
    import uvloop

    from modelpilot.cli.serve import control_plane
    from modelpilot.config import Settings
    from modelpilot.serving.server import build_plane, plan_from_targets
    from modelpilot.serving.settings import ServingSettings
    from modelpilot.workspace import Workspace

    ws = Workspace(Settings(home=work / "home"))
    source = control_plane(ws)
    settings = ServingSettings(log_predictions=False, inline_predict_ms=1000.0)
    plane, _, _ = build_plane(source, plan_from_targets(source.deployments, [model]), settings)
    name = model.split("/")[0].split("@")[0]
    body = (work / "records.json").read_bytes()

    async def request() -> tuple[int, bytes, str]:  # as FastPredictPath awaits it in a task
        return await plane.predict_payload(name, body, {})

    async def run() -> None:
        await plane.startup()
        for _ in range(rounds):
            answers = await asyncio.gather(*(request() for _ in range(CALLERS)))
            if answers[0][0] != 200:
                raise SystemExit(f"the plane answered {answers[0]}")
        await plane.shutdown()

    uvloop.run(run())


def total(work: Path, model: str, rounds: int) -> int:
    """Callgrind's instruction total of one child run."""
    out = work / f"callgrind.{rounds}"
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, __file__, "--child", "--work", str(work), "--model", model,
        "--rounds", str(rounds),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, env=env, capture_output=True)
    totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
    if not totals:
        summary = [line for line in out.read_text().splitlines() if line.startswith("summary:")]
        return int(summary[-1].split()[1])
    return int(totals[-1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="hgb/2", help="hgb/1 scikit-learn, hgb/2 its onnx")
    parser.add_argument("--rounds", type=int, default=100, help="rounds of the short run")
    parser.add_argument("--work", type=Path, help="keep the trained model here between runs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.work, args.model, args.rounds)
        return
    if shutil.which("valgrind") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], check=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="mp-plane-"))
    if not (work / "records.json").exists():
        import serving  # the shared model and bodies (benchmarks/serving.py)

        work.mkdir(parents=True, exist_ok=True)
        serving.train(work)
    short, long = args.rounds, 4 * args.rounds
    counts = {rounds: total(work, args.model, rounds) for rounds in (short, long)}
    per_request = (counts[long] - counts[short]) / ((long - short) * CALLERS)
    print(f"{args.model}: {per_request:,.0f} instructions a request in the data plane")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
