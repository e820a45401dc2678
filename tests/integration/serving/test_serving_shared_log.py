"""Two servers on one predictions folder, each PID 1 (as in two containers), restarts under load.

Every acknowledged request (HTTP 200 with its request id) must be in the log exactly once
afterwards, in ``--durability sync``, although one server is SIGKILLed and restarted three
times while the other keeps serving. Each server runs in its own PID namespace (``unshare``),
so both have process id 1, which is what two containers sharing a volume look like.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from conftest import HERE, wait_ready
from modelpilot.predictions import read_predictions, recover_wal_files
from mp_server import copy_home, free_port

RECORD = {"age": 40, "income": 52.5, "calls": 3}
RESTARTS = 3
ROWS_BETWEEN_RESTARTS = 150


@dataclass
class PidOneServer:
    """`modelpilot serve` as PID 1 of a fresh PID namespace (``unshare`` is its parent)."""

    process: subprocess.Popen[bytes]
    url: str

    @property
    def inner_pid(self) -> int:
        """The server's process id as this (outer) namespace sees it."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0])

    def kill(self, sig: int) -> None:
        """Signal the server itself, then wait until unshare has reaped it."""
        os.kill(self.inner_pid, sig)
        self.process.wait(timeout=60)


def _start(home: Path) -> PidOneServer:
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux unshare is needed to give each server PID 1"
    port = free_port()
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        unshare,
        "--user",
        "--map-root-user",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        sys.executable,
        "-m",
        "modelpilot.cli.main",
        "serve",
        "churn@champion",
        "--port",
        str(port),
        "--durability",
        "sync",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = PidOneServer(process, f"http://127.0.0.1:{port}")
    wait_ready(server.url, process)
    return server


class Load:
    """Client threads sending one-row requests round-robin to the servers' current URLs."""

    def __init__(self, urls: list[str], threads: int = 4, max_requests: int = 3000) -> None:
        self.urls = urls  # replaced in place when a server restarts
        self.acknowledged: list[str] = []
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(i, max_requests)) for i in range(threads)
        ]

    def _loop(self, offset: int, max_requests: int) -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(max_requests):  # bounded
                if self.stop.is_set():
                    return
                url = self.urls[(i + offset) % len(self.urls)]
                try:
                    reply = client.post(f"{url}/predict/churn", json=[RECORD])
                except httpx.TransportError:
                    continue  # that server is down (being restarted)
                if reply.status_code == 200:
                    with self.changed:
                        self.acknowledged.append(reply.json()["request_id"])
                        self.changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = 120) -> None:
        with self.changed:
            reached = self.changed.wait_for(lambda: len(self.acknowledged) >= count, timeout_s)
        assert reached, f"only {len(self.acknowledged)} of {count} requests acknowledged in time"


def test_two_pid_one_servers_on_one_folder_keep_every_acknowledged_row_once(
    home: Path, tmp_path: Path
) -> None:
    server_home = tmp_path / "home"
    copy_home(home, server_home)
    steady, restarted = _start(server_home), _start(server_home)
    load = Load([steady.url, restarted.url])
    for thread in load.threads:
        thread.start()
    try:
        for round_ in range(1, RESTARTS + 1):
            load.wait_for(round_ * ROWS_BETWEEN_RESTARTS)
            restarted.kill(signal.SIGKILL)  # no flush, no close: only the WAL holds its rows
            restarted = _start(server_home)  # recovers the dead server's WAL on start-up
            load.urls[1] = restarted.url
        load.wait_for((RESTARTS + 1) * ROWS_BETWEEN_RESTARTS)
    finally:
        load.stop.set()
        for thread in load.threads:
            thread.join()
        for server in (steady, restarted):
            server.kill(signal.SIGTERM)  # clean shutdown: both flush and close their logs
    folder = server_home / "predictions"
    recover_wal_files(folder)  # anything a dead server left, as the next start would
    assert list(folder.glob("wal-*")) == []
    logged = Counter(read_predictions(folder, model="churn")["request_id"])
    acknowledged = load.acknowledged
    assert len(set(acknowledged)) == len(acknowledged), "request ids must be unique"
    missing = [r for r in acknowledged if logged[r] == 0]
    twice = [r for r in acknowledged if logged[r] > 1]
    assert (len(missing), len(twice)) == (0, 0), (
        f"of {len(acknowledged)} acknowledged rows, {len(missing)} are missing from the log "
        f"and {len(twice)} are logged more than once"
    )
