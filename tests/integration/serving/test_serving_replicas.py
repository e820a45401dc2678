"""`modelpilot serve --replicas N`: N processes on one port (SO_REUSEPORT) under a supervisor.

Real processes on loopback: the supervisor is started as users start it, each replica also
listens on its own port (``--replica-ports``) so a test can ask one replica for its
``/metrics`` and follow one replica's process id.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from replica_load import (
    RECORD,
    Load,
    Replicas,
    answers,
    assert_logged_once,
    is_alive,
    kill_under_load,
    wait_for,
)

from conftest import HERE, wait_ready
from modelpilot import release
from modelpilot.config import Settings
from modelpilot.predictions import read_predictions, recover_wal_files
from modelpilot.workspace import Workspace
from mp_server import free_port


@pytest.fixture
def start_replicas(replica_home: Path, tmp_path: Path) -> Iterator[Callable[..., Replicas]]:
    started: list[Replicas] = []

    def start(*args: str, count: str = "2") -> Replicas:
        port, base = free_port(), free_port(2)
        env = {
            **os.environ,
            "MODELPILOT_HOME": str(replica_home),
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        stderr_path = tmp_path / f"supervisor-{len(started)}.err"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "modelpilot.cli.main",
                    "serve",
                    *args,
                    "--replicas",
                    count,
                    "--port",
                    str(port),
                    "--replica-ports",
                    str(base),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        replicas = Replicas(process, port, [base, base + 1], stderr_path)
        started.append(replicas)
        try:
            for index in range(int(count.split(":")[0])):  # the replicas started at once
                wait_ready(replicas.own_url(index), process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its stderr:\n{stderr_path.read_text()}") from exc
        return replicas

    yield start
    for replicas in started:
        if replicas.process.poll() is None:
            replicas.process.kill()  # the replicas get SIGTERM from the kernel (PDEATHSIG)
            replicas.process.wait()


def test_two_replicas_share_one_port_follow_one_deployment_and_stop_together(
    start_replicas: Callable[..., Replicas], replica_home: Path
) -> None:
    with closing(Workspace(Settings(home=replica_home))) as ws:
        release.create_deployment(ws.store, "churn-rep", "churn/1")
    replicas = start_replicas("churn-rep", "--no-log")
    pids = [replicas.pid(0), replicas.pid(1)]
    assert len(set(pids)) == 2

    for _ in range(40):  # a new connection each: the kernel hashes each to one replica
        reply = httpx.post(f"{replicas.url}/predict/churn-rep", json=[RECORD], timeout=30)
        assert reply.status_code == 200, reply.text
    answered = [replicas.requests_answered(0), replicas.requests_answered(1)]
    assert sum(answered) == 40
    assert min(answered) > 0, f"one replica got every request: {answered}"

    with closing(Workspace(Settings(home=replica_home))) as ws:
        revision = release.set_canary(ws.store, "churn-rep", "churn/2", 20).revision

    def both_follow() -> bool:
        views = [httpx.get(f"{replicas.own_url(i)}/deployments/churn-rep").json() for i in (0, 1)]
        return all(v["revision"] == revision for v in views)

    wait_for(both_follow, f"both replicas at revision {revision}")

    assert replicas.stop() == 0
    assert not any(is_alive(pid) for pid in pids)


@pytest.mark.slow  # three servers started, one killed and replaced under load
def test_a_killed_replica_is_replaced_and_no_acknowledged_prediction_is_lost(
    start_replicas: Callable[..., Replicas], replica_home: Path
) -> None:
    replicas = start_replicas("churn@champion", "--durability", "sync")
    victim = replicas.pid(1)
    load = kill_under_load(replicas, victim, victim)
    assert load.survivor_failures == []  # the other replica's requests never noticed
    assert load.survivor_answered > 0
    assert replicas.stop() == 0
    assert "replica 1" in replicas.stderr_path.read_text()  # the restart is logged

    assert_logged_once(replica_home / "predictions", load.acknowledged)


@pytest.mark.slow  # three servers started in turn (about 15 s)
def test_replicas_scale_up_under_load_and_drain_back_when_idle(
    start_replicas: Callable[..., Replicas], replica_home: Path
) -> None:
    """--replicas 1:2 with short delays: requests of 200 rows, each waiting up to 100 ms
    for a batch, keep over 50 rows queued, so a second replica starts; once the load stops
    it is drained, and every prediction it acknowledged is in the log."""
    replicas = start_replicas(
        "churn@champion",
        "--durability",
        "sync",
        "--max-wait-ms",
        "100",
        "--target-queue",
        "50",
        "--scale-up-delay-s",
        "1",
        "--scale-down-delay-s",
        "2",
        count="1:2",
    )
    assert not answers(replicas.own_url(1))
    load = Load(replicas.url, replicas.own_url(0), rows=200)
    threads = [threading.Thread(target=load.shared, args=(2_000,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: answers(replicas.own_url(1)), "a second replica under load")
        added = replicas.pid(1)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join()
    wait_for(lambda: not is_alive(added), "the added replica to drain and stop once idle")
    assert answers(replicas.own_url(0))
    assert replicas.stop() == 0
    err = replicas.stderr_path.read_text()
    assert "scaling up to 2 replicas" in err and "scaling down to 1 replicas" in err
    assert f"replica 1 (pid {added}) drained and stopped" in err

    folder = replica_home / "predictions"
    recover_wal_files(folder)
    logged = set(read_predictions(folder, model="churn")["request_id"])
    missing = [r for r in load.acknowledged if r not in logged]
    assert load.acknowledged and missing == []


def test_replicas_of_a_missing_model_stop_with_its_exit_code(replica_home: Path) -> None:
    env = {**os.environ, "MODELPILOT_HOME": str(replica_home)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelpilot.cli.main",
            "serve",
            "nosuch@champion",
            "--replicas",
            "2",
            "--port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert "nosuch" in done.stderr
    assert "failed to start (exit code 3)" in done.stderr


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("1:2", "give --replica-ports BASE too"),  # the queues are read from the own ports
        ("3:2", "need 1 <= MIN <= MAX"),
        ("two", "a count (4) or a range MIN:MAX (2:8)"),
    ],
)
def test_a_replica_range_without_its_ports_or_out_of_order_is_refused(
    replica_home: Path, count: str, message: str
) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "modelpilot.cli.main", "serve", "churn@champion"),
            *("--replicas", count, "--port", str(free_port())),
        ],
        env={**os.environ, "MODELPILOT_HOME": str(replica_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert message in done.stderr
