"""Serving throughput and latency: modelpilot vs MLflow and BentoML, side by side in one run.

    python benchmarks/serving.py --setup     # once: peer venvs under .venvs/, wrk via apt-get
    python benchmarks/serving.py             # ~6 minutes: every server at c = 1, 8, 32

One model for everyone: HistGradientBoostingClassifier on make_classification(50,000 rows,
20 features, random_state=0). Each server is pinned to CPU 1 with one OpenMP thread; wrk
runs on CPU 0 with a one-row JSON body, for --seconds per level after a warm-up. Printed:
req/s, p50, p99, errors and each system's ratio to modelpilot (batching on).
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
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venvs"
PEERS = Path(__file__).resolve().parent / "peers"
LUA = PEERS / "post.lua"
LEVELS = (1, 8, 32)
SKLEARN = "1.8.0"  # every process must unpickle the peers' joblib file with the same version


def setup() -> None:
    """Create peer venvs and install wrk (idempotent)."""
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    for name, packages in (
        ("mlflow", ["mlflow==3.17.2"]),
        ("bento", ["bentoml==1.4.39", "pandas", "joblib"]),
    ):
        python = VENVS / name / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                *packages,
                f"scikit-learn=={SKLEARN}",
                "numpy==" + np.__version__,
            ],
            check=True,
        )


def train(work: Path) -> dict[str, Any]:
    """Train the shared model; register it with modelpilot; write peer artefacts and bodies."""
    import joblib
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelpilot.config import Settings
    from modelpilot.workspace import Workspace

    x, y = make_classification(n_samples=50_000, n_features=20, random_state=0)
    columns = [f"f{i}" for i in range(20)]
    frame = pd.DataFrame(x, columns=columns)
    model = HistGradientBoostingClassifier(random_state=0).fit(frame, y)
    ws = Workspace(Settings(home=work / "home"))
    ws.log_model(model, "hgb", input_example=frame.head())
    ws.close()
    plain = HistGradientBoostingClassifier(random_state=0).fit(x, y)  # peers take plain arrays
    joblib.dump(plain, work / "model.joblib")
    np.save(work / "x.npy", x[:1000])
    row = x[0].tolist()
    bodies = {
        "records": [dict(zip(columns, row, strict=True))],
        "inputs": {"inputs": [row]},
    }
    for name, body in bodies.items():
        (work / f"{name}.json").write_text(json.dumps(body))
    return {"x": x, "model": model, "frame": frame}


def in_process(trained: dict[str, Any]) -> dict[str, float]:
    """predict_proba rows/s at batch 1 and 64 in this process (pinned to one core)."""
    os.sched_setaffinity(0, {1})
    model, frame = trained["model"], trained["frame"]
    out = {}
    for batch in (1, 64):
        rows = frame.iloc[:batch]
        model.predict_proba(rows)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 3:
            model.predict_proba(rows)
            n += 1
        out[f"batch {batch}"] = n * batch / (time.perf_counter() - start)
    os.sched_setaffinity(0, {0, 1})
    return out


def wait_health(url: str, proc: subprocess.Popen[bytes], limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)  # polling a starting server, bounded by the deadline
    raise RuntimeError(f"{url} not healthy after {limit_s} s")


def wrk(url: str, body: Path, connections: int, seconds: float) -> dict[str, float]:
    env = {**os.environ, "BODY_FILE": str(body), "MAX_REQ": "2000000"}
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    data = json.loads(re.search(r"WRKJSON (\{.*\})", out).group(1))  # type: ignore[union-attr]
    errors = sum(
        data[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
    )
    return {
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": errors,
    }


def run_server(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    health: str,
    url: str,
    body: Path,
    seconds: float,
    cwd: Path | None = None,
) -> dict[int, dict[str, float]]:
    full_env = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        ["taskset", "-c", "1", *cmd],
        env=full_env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_health(health, proc)
        wrk(url, body, 8, 3)  # warm-up
        results = {c: wrk(url, body, c, seconds) for c in LEVELS}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    line = "  ".join(
        f"c={c}: {r['rps']:7.0f} req/s p99 {r['p99_ms']:6.1f} ms" for c, r in results.items()
    )
    print(f"  {name:32s} {line}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    work = Path(tempfile.mkdtemp(prefix="mp-serve-bench-"))
    trained = train(work)
    limit = in_process(trained)
    print(
        f"in-process predict_proba (one core): {limit['batch 1']:,.0f} rows/s at batch 1, "
        f"{limit['batch 64']:,.0f} rows/s at batch 64",
        flush=True,
    )
    mp = [sys.executable, "-m", "modelpilot.cli.main", "serve", "hgb/1", "--port"]
    home = {"MODELPILOT_HOME": str(work / "home")}
    records, inputs = work / "records.json", work / "inputs.json"
    results: dict[str, dict[int, dict[str, float]]] = {}
    results["modelpilot (batching)"] = run_server(
        "modelpilot (batching)",
        [*mp, "8101", "--no-log"],
        home,
        "http://127.0.0.1:8101/v2/health/ready",
        "http://127.0.0.1:8101/predict/hgb",
        records,
        args.seconds,
    )
    results["modelpilot (batching, logged)"] = run_server(
        "modelpilot (batching, logged)",
        [*mp, "8104"],
        home,
        "http://127.0.0.1:8104/v2/health/ready",
        "http://127.0.0.1:8104/predict/hgb",
        records,
        args.seconds,
    )
    results["modelpilot (no batching)"] = run_server(
        "modelpilot (no batching)",
        [*mp, "8102", "--no-log", "--no-batching"],
        home,
        "http://127.0.0.1:8102/v2/health/ready",
        "http://127.0.0.1:8102/predict/hgb",
        records,
        args.seconds,
    )
    uvicorn = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.peers.noop_app:app",
        "--port",
        "8103",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    results["no-op ceiling (same stack)"] = run_server(
        "no-op ceiling (same stack)",
        uvicorn,
        {},
        "http://127.0.0.1:8103/health",
        "http://127.0.0.1:8103/noop",
        records,
        args.seconds,
        cwd=ROOT,
    )
    if not args.skip_peers:
        mlflow_bin = VENVS / "mlflow" / "bin"
        subprocess.run(
            [
                str(mlflow_bin / "python"),
                str(PEERS / "mlflow_model.py"),
                str(work / "model.joblib"),
                str(work / "mlflow_model"),
                str(work / "x.npy"),
            ],
            check=True,
            capture_output=True,
        )
        results["mlflow models serve"] = run_server(
            "mlflow models serve",
            [
                str(mlflow_bin / "mlflow"),
                "models",
                "serve",
                "-m",
                str(work / "mlflow_model"),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                "8201",
                "-w",
                "1",
            ],
            {"PATH": f"{mlflow_bin}:{os.environ['PATH']}", "MLFLOW_DISABLE_TELEMETRY": "true"},
            "http://127.0.0.1:8201/ping",
            "http://127.0.0.1:8201/invocations",
            inputs,
            args.seconds,
        )
        bento_bin = VENVS / "bento" / "bin"
        for service, port in (("HGBBatched", 8301), ("HGBUnbatched", 8302)):
            results[f"BentoML {service}"] = run_server(
                f"BentoML {service}",
                [
                    str(bento_bin / "bentoml"),
                    "serve",
                    f"bento_service:{service}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                {
                    "MODEL_PATH": str(work / "model.joblib"),
                    "PATH": f"{bento_bin}:{os.environ['PATH']}",
                    "BENTOML_DO_NOT_TRACK": "true",
                },
                f"http://127.0.0.1:{port}/readyz",
                f"http://127.0.0.1:{port}/predict",
                inputs,
                args.seconds,
                cwd=PEERS,
            )
    ours = results["modelpilot (batching)"]
    print(f"\n{'system':32s} " + " ".join(f"{'c=' + str(c):>30s}" for c in LEVELS))
    for name, by_level in results.items():
        cells = [
            f"{r['rps']:7.0f}/s p50 {r['p50_ms']:5.1f} p99 {r['p99_ms']:6.1f} e{r['errors']:.0f}"
            for r in by_level.values()
        ]
        print(f"{name:32s} " + " ".join(f"{cell:>30s}" for cell in cells))
    print("\nmodelpilot (batching) / other, req/s:")
    for name, by_level in results.items():
        if name != "modelpilot (batching)":
            print(
                f"  vs {name:30s} "
                + "  ".join(f"c={c}: {ours[c]['rps'] / by_level[c]['rps']:5.2f}x" for c in LEVELS)
            )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
