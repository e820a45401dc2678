"""What one data-plane replica costs the control plane: requests, SQL statements, server CPU.

    python benchmarks/control_plane_polling.py          # ~30 s

A replica that follows a deployment through ``modelpilot server`` (``serve NAME --server``)
polls every ``deployment_poll_s`` (0.5 s): ``GET /api/v1/deployments/NAME`` (the deployment
follower) and ``GET /api/v1/logging-policies`` (the policy follower), plus one
``GET .../aliases/ALIAS`` per alias reference it serves (``churn@champion``). This script
counts the SQL statements each of those requests runs on the server (a SQLAlchemy event
listener on the app's engine, SQLite), then starts a real ``modelpilot server`` on loopback
(SQLite, auth on, one process) and measures how many such poll pairs per second it answers
with --threads client threads, and the server's CPU per request. Scaling model in
docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

HZ = os.sysconf("SC_CLK_TCK")


def setup(home: Path) -> str:
    """A home with churn/1, a deployment, one logging policy and a viewer token."""
    from modelpilot import release
    from modelpilot.config import Settings
    from modelpilot.identity import Role, create_token
    from modelpilot.workspace import Workspace

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    ws = Workspace(Settings(home=home))
    ws.log_model(LogisticRegression().fit(x, x["a"] > 0), "churn", input_example=x.head())
    ws.set_alias("churn", "champion", 1)
    release.create_deployment(ws.store, "churn-prod", "churn/1")
    ws.log_policies.set_policy("churn", columns={"a": "hash"})
    token = create_token(ws.local_store(), "replica", Role.VIEWER).token
    ws.close()
    return token


POLLS = (
    "/api/v1/deployments/churn-prod",
    "/api/v1/logging-policies",
    "/api/v1/models/churn/aliases/champion",
)


def statements_per_poll(home: Path, token: str) -> dict[str, float]:
    """SQL statements the server runs per polling request (in-process app, same code)."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from modelpilot.config import Settings
    from modelpilot.server.app import create_app
    from modelpilot.store import Store

    settings = Settings(home=home)
    store = Store.open(settings.resolved_store_uri())
    counted = [0]

    def count(*_: object) -> None:
        counted[0] += 1

    event.listen(store.engine, "before_cursor_execute", count)
    client = TestClient(create_app(store))
    headers = {"Authorization": f"Bearer {token}"}
    found = {}
    for path in POLLS:
        client.get(path, headers=headers)  # warm: first use of the token writes last_used
        counted[0] = 0
        for _ in range(20):
            assert client.get(path, headers=headers).status_code == 200
        found[path] = counted[0] / 20
    store.close()
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:13]) / HZ


def server_throughput(home: Path, token: str, seconds: float, threads: int) -> dict[str, float]:
    """Poll pairs (deployment + policies) per second a real one-process server answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MODELPILOT_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelpilot.cli.main", "server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)  # a starting server, bounded by the deadline
        done = [0] * threads
        stop = threading.Event()

        def loop(i: int) -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
                while not stop.is_set():
                    for path in POLLS[:2]:
                        c.get(path).raise_for_status()
                    done[i] += 1

        workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        for w in workers:
            w.start()
        time.sleep(seconds)  # the measuring window
        stop.set()
        for w in workers:
            w.join()
        wall, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
        pairs = sum(done)
        return {
            "poll_pairs_per_s": pairs / wall,
            "server_cpu_ms_per_pair": 1000 * cpu / max(pairs, 1),
            "server_cores": cpu / wall,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mp-cp-poll-")) / "home"
    token = setup(home)
    for path, n in statements_per_poll(home, token).items():
        print(f"SQL statements per GET {path}: {n:.1f}")
    result = server_throughput(home, token, args.seconds, args.threads)
    print(
        f"one server process (SQLite): {result['poll_pairs_per_s']:.0f} poll pairs/s "
        f"(deployment + policies), {result['server_cpu_ms_per_pair']:.2f} ms of server CPU "
        f"per pair, {result['server_cores']:.2f} cores busy"
    )


if __name__ == "__main__":
    main()
