"""Tracking write throughput: modelpilot vs MLflow, side by side in one run.

    python benchmarks/tracking.py            # installs MLflow into .venvs/mlflow on first use
    python benchmarks/tracking.py --skip-server --points 10000
    python benchmarks/tracking.py --server --points 10000 --clients 8   # through modelpilot server

Server mode runs the SDK against `modelpilot server` on SQLite and on PostgreSQL
(MODELPILOT_TEST_POSTGRES_URI or --pg-uri), next to `mlflow server` when MLflow is already in
.venvs/mlflow (it is never installed in this mode; without it modelpilot runs alone and is
compared with the issue's MLflow server figures: 16 points/s one by one, 3,458 batched).

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


MLFLOW_SERVER_ONE_BY_ONE = 16.0  # points/s, the measured `mlflow server` figures
MLFLOW_SERVER_BATCHED = 3458.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_modelpilot_server(store_uri: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "modelpilot.cli.main", "server", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--store-uri", store_uri],
        env={**os.environ, "MODELPILOT_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("modelpilot server exited during start-up")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)  # polling a starting server; bounded by the deadline above
    raise RuntimeError("modelpilot server not healthy after 60 s")


def _client_process(url: str, token: str, points: int, home: str) -> tuple[str, int]:
    """One of the concurrent clients: log ``points`` one by one; (run id, errors)."""
    from modelpilot.config import Settings
    from modelpilot.workspace import Workspace

    ws = Workspace(Settings(home=Path(home), server_uri=url, token=token))
    errors = 0
    with ws.start_run("bench-concurrent") as run:
        for i in range(points):
            try:
                ws.log_metric("loss", 1.0 / (i + 1), step=i)
            except Exception:
                errors += 1
    ws.close()
    return run.id, errors


def bench_modelpilot_server(
    store_uri: str, points: int, clients: int
) -> dict[str, dict[str, float]]:
    """The SDK's tracking calls through `modelpilot server` on ``store_uri`` (token auth on)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from modelpilot.config import Settings
    from modelpilot.server.auth import Role, create_token
    from modelpilot.store import Store
    from modelpilot.tracking import service
    from modelpilot.workspace import Workspace

    home = Path(tempfile.mkdtemp(prefix="mp-server-bench-"))
    store = Store.open(store_uri)
    token = create_token(store, "bench", Role.EDITOR).token
    proc, url = start_modelpilot_server(store_uri, home)
    results: dict[str, dict[str, float]] = {}
    try:
        ws = Workspace(Settings(home=home / "client", server_uri=url, token=token))

        def timed(name: str, body: object, n: int) -> None:
            start = time.perf_counter()
            with ws.start_run("bench") as run:
                body(n)  # type: ignore[operator]
            seconds = time.perf_counter() - start  # includes end_run, which sends every point
            found = len(ws.get_metric_history(run.id, "loss"))
            results[name] = {"points": n, "seconds": seconds, "per_s": n / seconds}
            results[name]["read_back"] = found

        def one_by_one(n: int) -> None:
            for i in range(n):
                ws.log_metric("loss", 1.0 / (i + 1), step=i)

        def batched(n: int) -> None:
            for b in range(0, n, 1000):
                steps = range(b, min(n, b + 1000))
                ws.log_batch("loss", [1.0 / (i + 1) for i in steps], steps)

        timed("one_by_one", one_by_one, points)
        timed("batched", batched, points)
        timed("batched_100k", batched, 100_000)
        results["run_start_end"] = time_runs(ws, 50)
        ws.close()
        if clients:
            start = time.perf_counter()
            with ProcessPoolExecutor(clients, mp_context=get_context("spawn")) as pool:
                futures = [
                    pool.submit(_client_process, url, token, points, str(home / f"c{i}"))
                    for i in range(clients)
                ]
                done = [f.result() for f in futures]
            seconds = time.perf_counter() - start
            stored = sum(service.count_metric_points(store, run_id) for run_id, _ in done)
            results[f"{clients}_clients"] = {
                "points": clients * points,
                "seconds": seconds,
                "per_s": clients * points / seconds,
                "read_back": stored,
                "errors": sum(e for _, e in done),
            }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        store.close()
        shutil.rmtree(home, ignore_errors=True)
    return results


def time_runs(ws: object, n: int) -> dict[str, float]:
    """``n`` empty runs started and ended (what one-by-one logging pays besides its points);
    "points" here are runs, and read back counts them through search."""
    start = time.perf_counter()
    for _ in range(n):
        with ws.start_run("bench-runs"):  # type: ignore[attr-defined]
            pass
    seconds = time.perf_counter() - start
    found = len(ws.search_runs("bench-runs"))  # type: ignore[attr-defined]
    return {"points": n, "seconds": seconds, "per_s": n / seconds, "read_back": found}


def _pg_schema_uri(base: str) -> tuple[str, object]:
    """A fresh schema on ``base`` (its URI, and a callable that drops it)."""
    import uuid

    from sqlalchemy import create_engine, text

    from modelpilot.config import normalise_store_uri

    base = normalise_store_uri(base)
    schema = f"mp_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}", drop


def server_mode(args: argparse.Namespace) -> None:
    """modelpilot server (SQLite, PostgreSQL) next to mlflow server when MLflow is present."""
    rows: list[tuple[str, str, dict[str, float]]] = []
    work = Path(tempfile.mkdtemp(prefix="mp-server-mode-"))
    targets = [("modelpilot server (SQLite)", f"sqlite:///{work}/mp.db", None)]
    pg = args.pg_uri or os.environ.get("MODELPILOT_TEST_POSTGRES_URI")
    if pg:
        uri, drop = _pg_schema_uri(pg)
        targets.append(("modelpilot server (PostgreSQL)", uri, drop))
    else:
        print("No PostgreSQL URI (--pg-uri or MODELPILOT_TEST_POSTGRES_URI): SQLite only.")
    for system, uri, cleanup in targets:
        try:
            for case, r in bench_modelpilot_server(uri, args.points, args.clients).items():
                rows.append((system, case, r))
        finally:
            if cleanup is not None:
                cleanup()  # type: ignore[operator]
    python = VENV / "bin" / "python"
    if python.exists():
        server = start_mlflow_server(python, work)
        try:
            for case, r in bench_mlflow(
                python, f"http://127.0.0.1:{PORT}", args.points, args.deadline_s
            ).items():
                rows.append(("mlflow server", case, r))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    else:
        print(
            f"MLflow peer missing ({VENV} not installed; this mode never installs it): "
            "running modelpilot alone, compared with the issue's mlflow server figures."
        )
    shutil.rmtree(work, ignore_errors=True)
    _print_rows(rows)
    peer = {c: r["per_s"] for s, c, r in rows if s == "mlflow server"}
    one_ref = max(
        (v for c, v in peer.items() if c.startswith("one_by_one")),
        default=MLFLOW_SERVER_ONE_BY_ONE,
    )
    batch_ref = peer.get("batched", MLFLOW_SERVER_BATCHED)
    for system in dict.fromkeys(s for s, _, _ in rows if s.startswith("modelpilot")):
        ours = {c: r for s, c, r in rows if s == system}
        print(
            f"\n{system}: one-by-one {ours['one_by_one']['per_s'] / one_ref:,.0f}x mlflow server "
            f"(target >= 1,000x of {one_ref:,.0f}/s); batched "
            f"{ours['batched_100k']['per_s'] / batch_ref:,.0f}x (target >= 20x of "
            f"{batch_ref:,.0f}/s)"
        )
        for case, r in ours.items():
            if "errors" in r:
                print(
                    f"  {case}: {r['errors']:.0f} errors, {r['points'] - r['read_back']:.0f} lost"
                )
    lost = [(s, c) for s, c, r in rows if r["read_back"] != r["points"]]
    print("every point read back" if not lost else f"POINTS MISSING in {lost}")


def _print_rows(rows: list[tuple[str, str, dict[str, float]]]) -> None:
    print(
        f"\n{'system':30s} {'case':18s} {'points':>8s} {'seconds':>9s} {'points/s':>12s} "
        f"{'read back':>10s}"
    )
    for system, case, r in rows:
        print(
            f"{system:30s} {case:18s} {r['points']:8.0f} {r['seconds']:9.3f} {r['per_s']:12,.0f} "
            f"{r['read_back']:10.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument(
        "--deadline-s", type=float, default=30.0, help="cap for MLflow's one-by-one cases"
    )
    parser.add_argument("--skip-server", action="store_true", help="skip the `mlflow server` mode")
    parser.add_argument(
        "--server", action="store_true", help="through modelpilot server (SQLite, PostgreSQL)"
    )
    parser.add_argument("--clients", type=int, default=8, help="server mode: concurrent clients")
    parser.add_argument("--pg-uri", default=None, help="server mode: PostgreSQL for the store")
    args = parser.parse_args()
    if args.server:
        server_mode(args)
        return

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
