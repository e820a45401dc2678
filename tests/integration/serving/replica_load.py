"""Shared by the replica tests: a running supervisor's ports, bounded request loops, waits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from modelpilot.predictions import read_predictions, recover_wal_files

RECORD = {"age": 40, "income": 52.5, "calls": 3}


@dataclass
class Replicas:
    """A running `modelpilot serve --replicas 2` supervisor and its ports."""

    process: subprocess.Popen[bytes]
    port: int
    own_ports: list[int]
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def own_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.own_ports[index]}"

    def metrics(self, index: int) -> str:
        return httpx.get(f"{self.own_url(index)}/metrics", timeout=10).text

    def pid(self, index: int) -> int:
        found = re.search(
            r'modelpilot_replica_info\{pid="(\d+)",replica="(\d+)"\}', self.metrics(index)
        )
        assert found is not None and int(found.group(2)) == index
        return int(found.group(1))

    def requests_answered(self, index: int) -> float:
        return sum(
            float(v)
            for v in re.findall(
                r"^modelpilot_requests_total\{[^}]*\} (\S+)$", self.metrics(index), re.M
            )
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=90)


def answers(url: str) -> bool:
    """Whether a server answers ready at ``url`` now."""
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)  # polling another process's state, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Load:
    """Bounded request loops: one on the shared port, one on replica 0's own port."""

    shared_url: str
    survivor_url: str
    rows: int = 1
    acknowledged: list[str] = field(default_factory=list)
    survivor_failures: list[str] = field(default_factory=list)
    survivor_answered: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)
    stop: threading.Event = field(default_factory=threading.Event)

    def shared(self, max_requests: int = 20_000) -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(max_requests):
                if self.stop.is_set():
                    return
                try:
                    reply = client.post(
                        f"{self.shared_url}/predict/churn", json=[RECORD] * self.rows
                    )
                except httpx.TransportError:
                    continue  # its replica was killed: a new connection goes to a live one
                if reply.status_code == 200:
                    with self.changed:
                        self.acknowledged.append(reply.json()["request_id"])
                        self.changed.notify_all()

    def survivor(self, max_requests: int = 20_000) -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(max_requests):
                if self.stop.is_set():
                    return
                try:
                    reply = client.post(f"{self.survivor_url}/predict/churn", json=[RECORD])
                except httpx.TransportError as exc:
                    self.survivor_failures.append(repr(exc))
                    continue
                if reply.status_code != 200:
                    self.survivor_failures.append(f"{reply.status_code}: {reply.text}")
                    continue
                with self.changed:
                    self.acknowledged.append(reply.json()["request_id"])
                    self.survivor_answered += 1
                    self.changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = 120) -> None:
        with self.changed:
            reached = self.changed.wait_for(lambda: len(self.acknowledged) >= count, timeout_s)
        assert reached, f"only {len(self.acknowledged)} of {count} requests acknowledged"


def assert_logged_once(folder: Path, acknowledged: list[str]) -> None:
    """Every acknowledged request is in the prediction log once, after recovering the
    write-ahead files a killed replica left (as the next start would)."""
    recover_wal_files(folder)
    assert list(folder.glob("wal-*")) == []
    logged = Counter(read_predictions(folder, model="churn")["request_id"])
    missing = [r for r in acknowledged if logged[r] == 0]
    twice = [r for r in acknowledged if logged[r] > 1]
    assert (len(missing), len(twice)) == (0, 0), (
        f"of {len(acknowledged)} acknowledged, {len(missing)} missing, {len(twice)} twice"
    )


def kill_under_load(replicas: Replicas, kill_pid: int, victim: int) -> Load:
    """Under load (two loops on the shared port, one on replica 0's own port), SIGKILL
    ``kill_pid`` (replica 1's process ``victim``, or the Ray actor holding it), wait until
    ``victim`` is gone and a replacement answers on replica 1's own port, then for 150 more
    acknowledged requests; returns the load, stopped."""
    load = Load(replicas.url, replicas.own_url(0))
    threads = [
        threading.Thread(target=load.shared),
        threading.Thread(target=load.shared),
        threading.Thread(target=load.survivor),
    ]
    for thread in threads:
        thread.start()
    try:
        load.wait_for(150)
        os.kill(kill_pid, signal.SIGKILL)  # no drain, no flush: only its WAL holds its rows
        wait_for(lambda: not is_alive(victim), "the killed replica to end")

        def replaced() -> bool:
            try:
                return replicas.pid(1) != victim
            except httpx.TransportError:
                return False

        wait_for(replaced, "a replacement replica on the own port")
        load.wait_for(len(load.acknowledged) + 150)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join()
    return load
