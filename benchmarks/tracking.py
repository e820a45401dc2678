"""Tracking write throughput: modelpilot vs MLflow, side by side in one run.

    python benchmarks/tracking.py            # installs MLflow into .venvs/mlflow on first use
    python benchmarks/tracking.py --skip-server --points 10000
    python benchmarks/tracking.py --server --pg-uri postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/tracking.py --server --quick    # a short run (about a minute)

Server mode runs the SDK against `modelpilot server` on SQLite and on PostgreSQL
(--pg-uri or MODELPILOT_TEST_POSTGRES_URI; a fresh schema, dropped afterwards), then the same
cases against `mlflow server` (SQLite behind it, on 127.0.0.1) in the same run, and prints
modelpilot / MLflow per case and store. Both modes install MLflow (MLFLOW_VERSION, the version
the issue's figures were measured with) into .venvs/mlflow with pip on first use and skip
the install when that version is there; with --no-mlflow, or when the install fails (no
network), modelpilot is compared with the issue's MLflow server figures instead: 16 points/s
one by one, 3,458 batched.

Cases (each starts a run, logs, ends the run, then reads every point back and counts it):
  one_by_one        10,000 x log_metric, one call per point
  one_by_one_async  MLflow's synchronous=False logging (modelpilot's log_metric is always
                    buffered); at most --async-points, since end_run waits for the queue
  batched           10 x log_batch of 1,000 points (plus 100,000 points for modelpilot's ceiling)
MLflow runs against a local SQLite store and against `mlflow server` (SQLite behind it); its
one-by-one cases stop at a deadline and report points/s over the points they logged. Every
loop is bounded (a point count, a deadline), and everything runs on 127.0.0.1. The load
average is printed with each system's figures: the machine may be shared.
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
MLFLOW_VERSION = "3.17.2"  # the MLflow figures were measured with 3.17


def installed_mlflow(python: Path) -> str | None:
    """The MLflow version in the venv of ``python``, or None (no venv, or no MLflow in it)."""
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_mlflow() -> Path:
    """MLflow's python in .venvs/mlflow, installed with pip when MLFLOW_VERSION is not there
    (a second call, or an earlier run's venv, installs nothing)."""
    python = VENV / "bin" / "python"
    found = installed_mlflow(python)
    if found == MLFLOW_VERSION:
        return python
    print(f"Installing mlflow=={MLFLOW_VERSION} into {VENV} (found {found})…", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"mlflow=={MLFLOW_VERSION}"],
        check=True,
        timeout=1800,
    )
    return python


def bench_modelpilot(points: int, ceiling: int = 100_000) -> dict[str, dict[str, float]]:
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
    timed(ceiling_case(ceiling), batched, ceiling)
    ws.close()
    shutil.rmtree(home, ignore_errors=True)
    del mp
    return results


def ceiling_case(points: int) -> str:
    """The name of the batched case with ``points`` points (batched_100k for 100,000)."""
    return f"batched_{points // 1000}k"


def bench_mlflow(
    python: Path, uri: str, points: int, deadline_s: float, async_points: int = 1_000
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
            "--async-points",
            str(async_points),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=1800,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


def start_mlflow_server(python: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`mlflow server` on a free port of 127.0.0.1 with a SQLite store in ``work``."""
    port = _free_port()
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
        str(port),
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
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.5)  # polling a starting server; bounded by the deadline above
    os.killpg(proc.pid, signal.SIGTERM)
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
    store_uri: str, points: int, clients: int, ceiling: int = 100_000, runs: int = 50
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
        timed(ceiling_case(ceiling), batched, ceiling)
        results["run_start_end"] = time_runs(ws, runs)
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
    """modelpilot server (SQLite, PostgreSQL), then mlflow server, in one run; ratios."""
    rows: list[tuple[str, str, dict[str, float]]] = []
    work = Path(tempfile.mkdtemp(prefix="mp-server-mode-"))
    targets = [("modelpilot server (SQLite)", f"sqlite:///{work}/mp.db", None)]
    pg = args.pg_uri or os.environ.get("MODELPILOT_TEST_POSTGRES_URI")
    if pg:
        uri, drop = _pg_schema_uri(pg)
        targets.append(("modelpilot server (PostgreSQL)", uri, drop))
    else:
        print("No PostgreSQL URI (--pg-uri or MODELPILOT_TEST_POSTGRES_URI): SQLite only.")
    python = None
    if not args.no_mlflow:
        try:
            python = ensure_mlflow()
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"MLflow could not be installed ({exc}): compared with the issue's figures.")
    loads: dict[str, float] = {}
    try:
        for system, uri, _ in targets:
            loads[system] = os.getloadavg()[0]
            results = bench_modelpilot_server(
                uri, args.points, args.clients, args.ceiling, args.runs
            )
            rows.extend((system, case, r) for case, r in results.items())
        if python is not None:
            loads["mlflow server"] = os.getloadavg()[0]
            server, url = start_mlflow_server(python, work)
            try:
                results = bench_mlflow(python, url, args.points, args.deadline_s, args.async_points)
                rows.extend(("mlflow server", case, r) for case, r in results.items())
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    finally:  # the PostgreSQL schema goes even when a SQLite case failed or was interrupted
        for _, _, cleanup in targets:
            if cleanup is not None:
                cleanup()  # type: ignore[operator]
        shutil.rmtree(work, ignore_errors=True)
    _print_rows(rows, loads)
    print_ratios(rows, args.ceiling)
    if args.quick:
        print(
            "(--quick: start-up and end-of-run costs weigh on so few points; judge the "
            "targets on a full run)"
        )
    lost = [(s, c) for s, c, r in rows if r["read_back"] != r["points"]]
    print("every point read back" if not lost else f"POINTS MISSING in {lost}")


def print_ratios(rows: list[tuple[str, str, dict[str, float]]], ceiling: int) -> None:
    """modelpilot / mlflow server per case and store, and the issue's targets (MLflow's
    figures from this run; the issue's when MLflow did not run): one by one against MLflow's
    synchronous one-by-one log_metric (16/s in the issue; its async 55/s is shown beside),
    batched against log_batch."""
    peer = {c: r["per_s"] for s, c, r in rows if s == "mlflow server"}
    measured = bool(peer)
    one = peer.get("one_by_one", MLFLOW_SERVER_ONE_BY_ONE)
    best_one = max(one, peer.get("one_by_one_async", 0.0))
    batch = peer.get("batched", MLFLOW_SERVER_BATCHED)
    source = "measured in this run" if measured else "the issue's figures (MLflow not run)"
    async_s = peer.get("one_by_one_async", 0.0)
    print(
        f"\nmlflow server ({source}): one by one {one:,.0f}/s, async {async_s:,.0f}/s, "
        f"log_batch {batch:,.0f}/s"
    )
    systems = list(dict.fromkeys(s for s, _, _ in rows if s.startswith("modelpilot")))
    big = ceiling_case(ceiling)
    compared = [
        ("one_by_one", "one_by_one", one, "log_metric one by one"),
        ("one_by_one", "one_by_one_async", best_one, "one by one vs MLflow's async logging"),
        ("batched", "batched", batch, "10 x 1,000 points vs log_batch"),
        (big, "batched", batch, f"{ceiling:,} points vs log_batch"),
    ]
    print(f"{'modelpilot / mlflow server':44s}" + "".join(f"{s[18:]:>16s}" for s in systems))
    for ours, _, ref, label in compared:
        cells = []
        for system in systems:
            r = next((r for s, c, r in rows if s == system and c == ours), None)
            cells.append(f"{r['per_s'] / ref:15,.0f}x" if r and ref else f"{'-':>16s}")
        print(f"{label:44s}" + "".join(cells))
    for system in systems:
        ours = {c: r for s, c, r in rows if s == system}
        one_x = ours["one_by_one"]["per_s"] / one  # the "one-by-one figure"
        batch_x = ours[big]["per_s"] / batch
        print(
            f"{system}: one by one {one_x:,.0f}x (target >= 1,000x) "
            f"{'met' if one_x >= 1000 else 'NOT MET'}; batched {batch_x:,.0f}x (target >= 20x) "
            f"{'met' if batch_x >= 20 else 'NOT MET'}"
        )
        for case, r in ours.items():
            if "errors" in r:
                print(
                    f"  {case}: {r['errors']:.0f} errors, {r['points'] - r['read_back']:.0f} lost"
                )


def _print_rows(
    rows: list[tuple[str, str, dict[str, float]]], loads: dict[str, float] | None = None
) -> None:
    print(
        f"\n{'system':30s} {'case':18s} {'points':>8s} {'seconds':>9s} {'points/s':>12s} "
        f"{'read back':>10s}"
    )
    for system, case, r in rows:
        print(
            f"{system:30s} {case:18s} {r['points']:8.0f} {r['seconds']:9.3f} {r['per_s']:12,.0f} "
            f"{r['read_back']:10.0f}"
        )
    for system, load in (loads or {}).items():
        print(f"load average (1 min) when {system} started: {load:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=None, help="per case (10,000)")
    parser.add_argument(
        "--deadline-s", type=float, default=None, help="cap for MLflow's one-by-one cases (30)"
    )
    parser.add_argument(
        "--async-points", type=int, default=None, help="MLflow's async case at most (1,000)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 2,000 points, a 20,000-point ceiling, MLflow capped at 5 s",
    )
    parser.add_argument("--skip-server", action="store_true", help="skip the `mlflow server` mode")
    parser.add_argument(
        "--server", action="store_true", help="through modelpilot server (SQLite, PostgreSQL)"
    )
    parser.add_argument("--clients", type=int, default=8, help="server mode: concurrent clients")
    parser.add_argument("--pg-uri", default=None, help="server mode: PostgreSQL for the store")
    parser.add_argument(
        "--no-mlflow", action="store_true", help="server mode: compare with the issue's figures"
    )
    args = parser.parse_args()
    quick = {"points": 2_000, "deadline_s": 5.0, "async_points": 100, "ceiling": 20_000, "runs": 10}
    full = {
        "points": 10_000,
        "deadline_s": 30.0,
        "async_points": 1_000,
        "ceiling": 100_000,
        "runs": 50,
    }
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if args.server:
        server_mode(args)
        return

    rows: list[tuple[str, str, dict[str, float]]] = []
    for case, r in bench_modelpilot(args.points, args.ceiling).items():
        rows.append(("modelpilot (local SQLite)", case, r))
    python = ensure_mlflow()
    work = Path(tempfile.mkdtemp(prefix="mlflow-bench-"))
    for case, r in bench_mlflow(
        python, f"sqlite:///{work}/local.db", args.points, args.deadline_s, args.async_points
    ).items():
        rows.append(("mlflow (local SQLite)", case, r))
    if not args.skip_server:
        server, url = start_mlflow_server(python, work)
        try:
            for case, r in bench_mlflow(
                python, url, args.points, args.deadline_s, args.async_points
            ).items():
                rows.append(("mlflow server", case, r))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)

    _print_rows(rows)
    best_mlflow_1by1 = max(
        r["per_s"] for s, c, r in rows if s.startswith("mlflow") and c.startswith("one_by_one")
    )
    ours = {c: r["per_s"] for s, c, r in rows if s.startswith("modelpilot")}
    print(
        "\nmodelpilot one-by-one / MLflow's best one-by-one: "
        f"{ours['one_by_one'] / best_mlflow_1by1:,.0f}x (target >= 100x)"
    )
    print(
        f"modelpilot batched ({args.ceiling:,} points): "
        f"{ours[ceiling_case(args.ceiling)]:,.0f} points/s (target >= 100,000)"
    )
    lost = [(s, c) for s, c, r in rows if r["read_back"] != r["points"]]
    print("every point read back" if not lost else f"POINTS MISSING in {lost}")


if __name__ == "__main__":
    main()
