"""Tracking write throughput: modelpilot vs MLflow, side by side in one run.

    python benchmarks/tracking.py            # installs MLflow into .venvs/mlflow on first use
    python benchmarks/tracking.py --skip-server --points 10000

Cases (each starts a run, logs, ends the run, then reads every point back and counts it):
  one_by_one        10,000 x log_metric, one call per point
  one_by_one_async  MLflow's synchronous=False logging (modelpilot's log_metric is always buffered)
  batched           10 x log_batch of 1,000 points (plus 100,000 points for modelpilot's ceiling)
MLflow runs against a local SQLite store and against `mlflow server` (SQLite behind it); its
one-by-one cases stop at a deadline and report points/s over the points they logged.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venvs" / "mlflow"
MLFLOW_VERSION = "3.17.2"
PORT = 5077


def ensure_mlflow() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"Installing mlflow=={MLFLOW_VERSION} into {VENV} (once)…", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"mlflow=={MLFLOW_VERSION}"], check=True
        )
    return python


def bench_modelpilot(points: int) -> dict[str, dict[str, float]]:
    import modelpilot as mp
    from modelpilot.config import Settings
    from modelpilot.workspace import Workspace

    home = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    ws = Workspace(Settings(home=home))
    with ws.start_run("warmup"):
        ws.log_batch("loss", [1.0] * 100)
    results: dict[str, dict[str, float]] = {}

    def timed(name: str, body: object, n: int) -> None:
        start = time.perf_counter()
        with ws.start_run("bench") as run:
            body(n)  # type: ignore[operator]
        seconds = time.perf_counter() - start  # includes end_run, which commits every point
        found = len(ws.get_metric_history(run.id, "loss"))
        results[name] = {"points": n, "seconds": seconds, "per_s": n / seconds, "read_back": found}

    def one_by_one(n: int) -> None:
        for i in range(n):
            ws.log_metric("loss", 1.0 / (i + 1), step=i)

    def batched(n: int) -> None:
        for b in range(0, n, 1000):
            ws.log_batch(
                "loss",
                [1.0 / (i + 1) for i in range(b, min(n, b + 1000))],
                range(b, min(n, b + 1000)),
            )

    timed("one_by_one", one_by_one, points)
    timed("batched", batched, points)
    timed("batched_100k", batched, 100_000)
    ws.close()
    shutil.rmtree(home, ignore_errors=True)
    del mp
    return results


def bench_mlflow(
    python: Path, uri: str, points: int, deadline_s: float
) -> dict[str, dict[str, float]]:
    script = Path(__file__).parent / "peers" / "mlflow_tracking.py"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    out = subprocess.run(
        [
            str(python),
            str(script),
            "--uri",
            uri,
            "--points",
            str(points),
            "--deadline-s",
            str(deadline_s),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=1800,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


def start_mlflow_server(python: Path, work: Path) -> subprocess.Popen[bytes]:
    cmd = [
        str(python.parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{work}/server.db",
        "--default-artifact-root",
        str(work / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(PORT),
    ]
    env = {
        **os.environ,
        "PATH": f"{python.parent}:{os.environ['PATH']}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("mlflow server exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2) as reply:
                if reply.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)  # polling a starting server; bounded by the deadline above
    raise RuntimeError("mlflow server not healthy after 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument(
        "--deadline-s", type=float, default=30.0, help="cap for MLflow's one-by-one cases"
    )
    parser.add_argument("--skip-server", action="store_true", help="skip the `mlflow server` mode")
    args = parser.parse_args()

    rows: list[tuple[str, str, dict[str, float]]] = []
    for case, r in bench_modelpilot(args.points).items():
        rows.append(("modelpilot (local SQLite)", case, r))
    python = ensure_mlflow()
    work = Path(tempfile.mkdtemp(prefix="mlflow-bench-"))
    for case, r in bench_mlflow(
        python, f"sqlite:///{work}/local.db", args.points, args.deadline_s
    ).items():
        rows.append(("mlflow (local SQLite)", case, r))
    if not args.skip_server:
        server = start_mlflow_server(python, work)
        try:
            for case, r in bench_mlflow(
                python, f"http://127.0.0.1:{PORT}", args.points, args.deadline_s
            ).items():
                rows.append(("mlflow server", case, r))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)

    print(
        f"\n{'system':28s} {'case':18s} {'points':>8s} {'seconds':>9s} {'points/s':>12s} "
        f"{'read back':>10s}"
    )
    for system, case, r in rows:
        print(
            f"{system:28s} {case:18s} {r['points']:8.0f} {r['seconds']:9.3f} {r['per_s']:12,.0f} "
            f"{r['read_back']:10.0f}"
        )
    best_mlflow_1by1 = max(
        r["per_s"] for s, c, r in rows if s.startswith("mlflow") and c.startswith("one_by_one")
    )
    ours = {c: r["per_s"] for s, c, r in rows if s.startswith("modelpilot")}
    print(
        "\nmodelpilot one-by-one / MLflow's best one-by-one: "
        f"{ours['one_by_one'] / best_mlflow_1by1:,.0f}x (target >= 100x)"
    )
    print(
        f"modelpilot batched (100k points): {ours['batched_100k']:,.0f} points/s "
        "(target >= 100,000)"
    )
    lost = [(s, c) for s, c, r in rows if r["read_back"] != r["points"]]
    print("every point read back" if not lost else f"POINTS MISSING in {lost}")


if __name__ == "__main__":
    main()
