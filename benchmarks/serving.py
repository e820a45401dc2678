"""Serving throughput and latency: modelpilot vs MLflow and BentoML, side by side in one run.

    python benchmarks/serving.py --setup     # once: peer venvs under .venvs/, wrk via apt-get
    python benchmarks/serving.py             # ~8 minutes: every server at c = 1, 8, 32

One model for everyone: HistGradientBoostingClassifier(random_state=0) on
make_classification(50,000 rows, 20 features, random_state=0). modelpilot serves it fitted on a
DataFrame (f0..f19, so JSON records carry names); the peers load the same fit on a plain matrix
from joblib, as in /work/shared/bench/peers. modelpilot also serves the model's ONNX candidate
(``modelpilot optimize hgb/1 --to onnx``, registered as hgb/2) on the same stack. Each server
runs pinned to CPU 1 with one OpenMP thread; wrk runs pinned to CPU 0 with a one-row JSON body
(post.lua), for --seconds per level after a warm-up. modelpilot's variants and the no-op ceiling
run in turns (--rounds rounds per level, every server once per round) so that the machine's
drift hits them alike; their ratios are medians of per-round ratios. The machine may be shared:
every run records the cores other processes used meanwhile ("foreign"), and a run disturbed by
more than --max-foreign cores is repeated once. Printed: req/s, p50, p99, errors, foreign load,
and ratios against modelpilot.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venvs"
PEERS = Path(__file__).resolve().parent / "serving_peers"
LEVELS = (1, 8, 32)
HZ = os.sysconf("SC_CLK_TCK")
CEILING = "no-op ceiling (same stack)"
ONNX = "modelpilot onnx candidate (batching)"
SKLEARN = "1.8.0"  # every venv unpickles the peers' joblib file: same scikit-learn and numpy


@dataclass
class System:
    """One server configuration to measure."""

    name: str
    cmd: list[str]
    health: str
    url: str
    body: str  # which body file: records, columns_oip, inputs, dataframe_split
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def setup() -> None:
    """Create the peer venvs and install wrk (idempotent)."""
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    pins = [f"scikit-learn=={SKLEARN}", f"numpy=={np.__version__}"]
    for name, packages in (
        ("mlflow", ["mlflow==3.17.2"]),
        ("bento", ["bentoml==1.4.39", "pandas", "joblib"]),
    ):
        python = VENVS / name / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages, *pins], check=True)


def train(work: Path) -> None:
    """Train the shared model, register it with modelpilot, write peer files and bodies."""
    import joblib
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelpilot.config import Settings
    from modelpilot.optimization import optimize_version
    from modelpilot.workspace import Workspace

    x, y = make_classification(n_samples=50_000, n_features=20, random_state=0)
    columns = [f"f{i}" for i in range(20)]
    frame = pd.DataFrame(x, columns=columns)
    named = HistGradientBoostingClassifier(random_state=0).fit(frame, y)
    ws = Workspace(Settings(home=work / "home"))
    ws.log_model(named, "hgb", input_example=frame.head())
    # hgb/2: its ONNX candidate (`modelpilot optimize hgb/1 --to onnx`), served like hgb/1
    optimize_version(
        ws.registry, ws.artifacts, ws.datasets, ws.load_model, "hgb/1", ["onnx"],
        data=frame.head(10_000),
    )  # fmt: skip
    ws.close()
    joblib.dump(HistGradientBoostingClassifier(random_state=0).fit(x, y), work / "model.joblib")
    joblib.dump(named, work / "model-named.joblib")
    np.save(work / "x.npy", x[:1000])
    row = x[0].tolist()
    oip = [
        {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
        for c, v in zip(columns, row, strict=True)
    ]
    bodies = {
        "records": [dict(zip(columns, row, strict=True))],
        "columns_oip": {"inputs": oip},
        "inputs": {"inputs": [row]},
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": [row]}},
    }
    for name, body in bodies.items():
        (work / f"{name}.json").write_text(json.dumps(body))


def in_process(work: Path, seconds: float) -> dict[str, float]:
    """predict_proba rows/s at batch 1 and 64, pinned to CPU 1, one OpenMP thread."""
    script = PEERS / "inprocess.py"
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            sys.executable,
            str(script),
            str(work / "model.joblib"),
            str(work / "x.npy"),
            str(seconds),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy."""
    with open("/proc/stat") as handle:
        v = [int(x) for x in handle.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a process and all its descendants (live ones)."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            cpu[int(entry)] = sum(int(f) for f in fields[11:15]) / HZ
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def wrk(url: str, body: Path, connections: int, seconds: float, server: int) -> dict[str, float]:
    """One wrk run; returns req/s, p50/p99 (ms), errors and the foreign cores meanwhile."""
    env = {**os.environ, "BODY_FILE": str(body), "MAX_REQ": "5000000"}
    cmd = [
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
        str(PEERS / "post.lua"),
        url,
    ]
    start, busy, own = time.monotonic(), busy_seconds(), tree_cpu_seconds(server)
    times = os.times()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    wall = time.monotonic() - start
    after = os.times()
    mine = (after.children_user + after.children_system) - (
        times.children_user + times.children_system
    )
    own = tree_cpu_seconds(server) - own + mine
    data = json.loads(re.search(r"WRKJSON (\{.*\})", out).group(1))  # type: ignore[union-attr]
    errors = sum(
        data[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
    )
    return {
        "requests": data["requests"],
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": errors,
        "foreign": max(0.0, (busy_seconds() - busy - own) / wall),
    }


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


def check_once(url: str, body: Path) -> None:
    """One request before load: a server that answers errors is not measured."""
    request = urllib.request.Request(
        url, data=body.read_bytes(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        if reply.status != 200:
            raise RuntimeError(f"{url} answered {reply.status}")


def wait_quiet(server: int, threshold: float, limit_s: float = 60) -> None:
    """Wait (bounded) until other processes use less than ``threshold`` cores."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        busy, own, start = busy_seconds(), tree_cpu_seconds(server), time.monotonic()
        time.sleep(1.0)  # a sampling window, not synchronisation
        own = tree_cpu_seconds(server) - own
        if (busy_seconds() - busy - own) / (time.monotonic() - start) < threshold:
            return


def start(system: System, work: Path, cpus: str = "1") -> subprocess.Popen[bytes]:
    """Start a server pinned to ``cpus``, wait until healthy, check one request, warm it up."""
    env = {**os.environ, **system.env, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        ["taskset", "-c", cpus, *system.cmd],
        env=env,
        cwd=system.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_health(system.health, proc)
        check_once(system.url, work / f"{system.body}.json")
        wrk(system.url, work / f"{system.body}.json", 8, 3, proc.pid)  # warm-up
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def level(
    system: System, proc: subprocess.Popen[bytes], work: Path, c: int, seconds: float, quiet: float
) -> dict[str, float]:
    """One wrk run at concurrency c, repeated once if other processes disturbed it."""
    body = work / f"{system.body}.json"
    wait_quiet(proc.pid, quiet)
    result = wrk(system.url, body, c, seconds, proc.pid)
    if result["foreign"] > quiet:  # disturbed by other work: once more
        wait_quiet(proc.pid, quiet)
        retry = wrk(system.url, body, c, seconds, proc.pid)
        result = min((result, retry), key=lambda r: r["foreign"])
    return result


def show(name: str, results: dict[int, Any]) -> None:
    cells = "  ".join(
        f"c={c}: {r['rps']:6.0f}/s p99 {r['p99_ms']:5.1f} ms" for c, r in results.items()
    )
    print(f"  {name:34s} {cells}", flush=True)


def measure(system: System, work: Path, seconds: float, quiet: float) -> dict[int, Any]:
    """Every level for one server, on its own."""
    proc = start(system, work)
    try:
        results = {c: level(system, proc, work, c, seconds, quiet) for c in LEVELS}
    finally:
        stop(proc)
    show(system.name, results)
    return results


def measure_interleaved(
    group: list[System], work: Path, seconds: float, quiet: float, rounds: int
) -> dict[str, dict[int, Any]]:
    """Servers that are compared by ratio, measured in turns: at each level, ``rounds`` rounds
    of seconds/rounds each, every server once per round.

    The machine's speed drifts by 20-30% over minutes (a shared host); measured one after the
    other, a ratio of two servers inherits that drift. In turns, both see the same drift: each
    reported figure is the median over rounds, and ``ratio`` (against the group's first
    server) is the median of the per-round ratios.
    """
    procs = []
    try:
        for system in group:
            procs.append(start(system, work))
        runs: dict[str, dict[int, list[dict[str, float]]]] = {
            s.name: {c: [] for c in LEVELS} for s in group
        }
        for c in LEVELS:
            for _ in range(rounds):
                for system, proc in zip(group, procs, strict=True):
                    result = level(system, proc, work, c, seconds / rounds, quiet)
                    runs[system.name][c].append(result)
    finally:
        for proc in procs:
            stop(proc)
    first = runs[group[0].name]
    out: dict[str, dict[int, Any]] = {}
    for system in group:
        by_level: dict[int, Any] = {}
        for c, results in runs[system.name].items():
            merged: dict[str, Any] = {
                key: float(np.median([r[key] for r in results]))
                for key in ("rps", "p50_ms", "p99_ms", "foreign")
            }
            merged["errors"] = sum(r["errors"] for r in results)
            merged["ratio"] = float(
                np.median([a["rps"] / b["rps"] for a, b in zip(first[c], results, strict=True)])
            )
            merged["rounds_rps"] = [round(r["rps"]) for r in results]
            by_level[c] = merged
        out[system.name] = by_level
        show(system.name, by_level)
    return out


def systems(work: Path, skip_peers: bool) -> list[System]:
    home = {"MODELPILOT_HOME": str(work / "home")}
    mp = [sys.executable, "-m", "modelpilot.cli.main", "serve"]

    def ours(
        name: str, port: int, flags: list[str], body: str = "records", ref: str = "hgb/1"
    ) -> System:
        url = f"http://127.0.0.1:{port}"
        path = "/v2/models/hgb/infer" if body == "columns_oip" else "/predict/hgb"
        return System(
            name,
            [*mp, ref, "--port", str(port), *flags],
            f"{url}/v2/health/ready",
            url + path,
            body,
            home,
        )

    found = [
        ours("modelpilot (batching)", 8101, ["--no-log"]),
        ours("modelpilot (batching, logged)", 8102, []),
        ours("modelpilot (no batching)", 8103, ["--no-log", "--no-batching"]),
        ours("modelpilot OIP v2 (batching)", 8104, ["--no-log"], "columns_oip"),
        ours(ONNX, 8106, ["--no-log"], ref="hgb/2"),
        System(
            CEILING,
            [sys.executable, str(PEERS / "noop_app.py"), "--port", "8105"],
            "http://127.0.0.1:8105/health",
            "http://127.0.0.1:8105/predict/noop",
            "records",
        ),
    ]
    if skip_peers:
        return found
    mlflow_bin, bento_bin = VENVS / "mlflow" / "bin", VENVS / "bento" / "bin"
    made = subprocess.run(
        [
            str(mlflow_bin / "python"),
            str(PEERS / "mlflow_model.py"),
            str(work / "model.joblib"),
            str(work / "x.npy"),
            str(work / "mlflow_tensor"),
            str(work / "mlflow_columns"),
        ],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        raise RuntimeError(f"mlflow_model.py failed:\n{made.stderr[-2000:]}")
    mlflow_env = {"PATH": f"{mlflow_bin}:{os.environ['PATH']}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    for name, model, port, body in (
        ("mlflow models serve", "mlflow_tensor", 8201, "inputs"),
        ("mlflow models serve (dataframe)", "mlflow_columns", 8202, "dataframe_split"),
    ):
        found.append(
            System(
                name,
                [
                    str(mlflow_bin / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    str(work / model),
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-w",
                    "1",
                ],
                f"http://127.0.0.1:{port}/ping",
                f"http://127.0.0.1:{port}/invocations",
                body,
                mlflow_env,
            )
        )
    bento_env = {
        "MODEL_PATH": str(work / "model.joblib"),
        "PATH": f"{bento_bin}:{os.environ['PATH']}",
        "BENTOML_DO_NOT_TRACK": "true",
    }
    for name, service, port in (
        ("BentoML (adaptive batching)", "HGBBatched", 8301),
        ("BentoML (no batching)", "HGBUnbatched", 8302),
    ):
        found.append(
            System(
                name,
                [
                    str(bento_bin / "bentoml"),
                    "serve",
                    f"bento_service:{service}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                f"http://127.0.0.1:{port}/readyz",
                f"http://127.0.0.1:{port}/predict",
                "inputs",
                bento_env,
                PEERS,
            )
        )
    return found


def ratio(ours: dict[int, Any], other: dict[int, Any], c: int) -> float:
    """modelpilot's req/s over another's: paired per round where they ran in turns."""
    if "ratio" in other[c]:
        return float(other[c]["ratio"])
    return float(ours[c]["rps"] / max(other[c]["rps"], 1e-9))


def paired(a: dict[int, Any], b: dict[int, Any], c: int) -> float:
    """a's req/s over b's at level c: the median of per-round ratios (both ran in turns).

    Not a ratio of two ratios against a third server: that mixes three servers' round noise
    (on a noisy machine it read 0.75 where the paired rounds gave 0.72)."""
    rounds = zip(a[c]["rounds_rps"], b[c]["rounds_rps"], strict=True)
    return float(np.median([x / max(y, 1e-9) for x, y in rounds]))


def report(limit: dict[str, float], results: dict[str, dict[int, Any]]) -> None:
    print(
        "\nin-process predict_proba, one core: "
        f"matrix {limit['matrix_1']:,.0f} rows/s at batch 1, {limit['matrix_64']:,.0f} at 64; "
        f"DataFrame {limit['frame_1']:,.0f} at 1, {limit['frame_64']:,.0f} at 64"
    )
    header = "".join(f"{'c=' + str(c):>40s}" for c in LEVELS)
    print(f"\n{'system':34s}{header}")
    for name, by_level in results.items():
        cells = [
            f"{r['rps']:6.0f}/s p50 {r['p50_ms']:5.1f} p99 {r['p99_ms']:6.1f} e{r['errors']:.0f}"
            f" f{r['foreign']:.2f}"
            for r in by_level.values()
        ]
        print(f"{name:34s}" + "".join(f"{cell:>40s}" for cell in cells))
    print("(req/s, p50/p99 ms, e = errors, f = cores used by other processes meanwhile)")
    ours = results["modelpilot (batching)"]
    print("\nmodelpilot (batching) req/s divided by:")
    for name, by_level in results.items():
        if name != "modelpilot (batching)":
            ratios = "  ".join(f"c={c}: {ratio(ours, by_level, c):6.2f}x" for c in LEVELS)
            print(f"  {name:34s} {ratios}")
    print("(measured in turns with modelpilot: the median of per-round ratios, see --rounds)")
    top = ours[32]
    checks = {
        "p99 < 50 ms at c=32": top["p99_ms"] < 50,
        "zero errors": all(r["errors"] == 0 for r in ours.values()),
    }
    if CEILING in results:
        checks[">= 0.5 x no-op ceiling at c=32"] = ratio(ours, results[CEILING], 32) >= 0.5
    if ONNX in results:  # issue 16: the onnx candidate of the same model on the same stack
        onnx = results[ONNX]
        gain = paired(onnx, ours, 32)
        checks[f">= 1.3 x scikit-learn for onnx at c=32 (is {gain:.2f})"] = gain >= 1.3
        if CEILING in results:
            share = paired(onnx, results[CEILING], 32)
            checks[f"onnx >= 0.75 x ceiling at c=32 (is {share:.2f})"] = share >= 0.75
    for peer in ("BentoML (adaptive batching)", "mlflow models serve"):
        if peer in results:
            checks[f">= 5 x {peer} at c=32"] = top["rps"] >= 5 * results[peer][32]["rps"]
    print("\ntargets: " + ", ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in checks.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setup", action="store_true", help="create peer venvs, install wrk")
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--max-foreign", type=float, default=0.25, help="cores; else repeat")
    parser.add_argument(
        "--rounds", type=int, default=5, help="turns per level for modelpilot and the ceiling"
    )
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated name prefixes to run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--levels", default="1,8,32", help="concurrency levels; the targets are read at 32"
    )
    args = parser.parse_args()
    global LEVELS  # (read by measure, measure_interleaved and report)
    LEVELS = tuple(sorted({int(c) for c in args.levels.split(",")} | {32}))
    if args.setup:
        setup()
        return
    work = Path(tempfile.mkdtemp(prefix="mp-serve-bench-"))
    try:
        train(work)
        limit = in_process(work, 3.0)
        chosen = [
            s
            for s in systems(work, args.skip_peers)
            if not args.only or any(s.name.startswith(p) for p in args.only.split(","))
        ]
        ours = [s for s in chosen if s.name.startswith(("modelpilot", "no-op"))]
        results = measure_interleaved(ours, work, args.seconds, args.max_foreign, args.rounds)
        for system in chosen:
            if system not in ours:
                results[system.name] = measure(system, work, args.seconds, args.max_foreign)
        if "modelpilot (batching)" in results:
            report(limit, results)
        if args.json:
            args.json.write_text(json.dumps({"in_process": limit, "servers": results}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
