"""`modelpilot serve --executor ray --replicas N`: replicas as Ray actors, each running the
data plane's own process, sharing the port on the one node of the session's Ray cluster
(``ray_address`` in tests/conftest.py).

The supervisor is started as users start it, joining the cluster at ``--ray-address``; each
replica also listens on its own port (``--replica-ports``) so the test can follow one
replica's process, and through its parent, the actor that holds it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import replica_load as rl

from conftest import HERE, wait_ready
from modelpilot.predictions import read_predictions, recover_wal_files
from mp_server import free_port


def _serve(home: Path, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    with (tmp_path / "supervisor.err").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "modelpilot.cli.main", "serve", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


@contextlib.contextmanager
def _supervisor(
    ray_address: str, home: Path, tmp_path: Path, count: str, *extra: str
) -> Iterator[rl.Replicas]:
    """``serve --executor ray --replicas COUNT`` joining the session's cluster; killed at
    the end if still running (Ray kills its actors, and the kernel their replicas)."""
    port, base = free_port(), free_port(2)
    process = _serve(
        home,
        tmp_path,
        *("churn@champion", "--durability", "sync", "--executor", "ray", *extra),
        *("--ray-address", ray_address, "--replicas", count),
        *("--port", str(port), "--replica-ports", str(base)),
    )
    try:
        yield rl.Replicas(process, port, [base, base + 1], tmp_path / "supervisor.err")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def ray_replicas(ray_address: str, replica_home: Path, tmp_path: Path) -> Iterator[rl.Replicas]:
    with _supervisor(ray_address, replica_home, tmp_path, "2") as replicas:
        for index in (0, 1):
            wait_ready(replicas.own_url(index), replicas.process)
        yield replicas


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow  # two Ray actors and their servers, one killed and replaced under load
def test_ray_replicas_share_the_port_and_a_killed_actor_is_replaced_losing_nothing(
    ray_replicas: rl.Replicas, replica_home: Path
) -> None:
    replicas = ray_replicas
    pids = [replicas.pid(0), replicas.pid(1)]
    actors = [_parent(pid) for pid in pids]
    assert len(set(pids)) == 2 and os.getpid() not in actors
    for _ in range(40):  # a new connection each: the kernel hashes each to one replica
        reply = httpx.post(f"{replicas.url}/predict/churn", json=[rl.RECORD], timeout=30)
        assert reply.status_code == 200, reply.text
    answered = [replicas.requests_answered(0), replicas.requests_answered(1)]
    assert sum(answered) == 40 and min(answered) > 0, answered

    # the actor's worker dies, as on a lost node: its replica goes with it
    load = rl.kill_under_load(replicas, actors[1], pids[1])
    replacement = replicas.pid(1)
    assert load.survivor_failures == []  # the other replica's requests never noticed
    assert replicas.stop() == 0
    err = replicas.stderr_path.read_text()
    assert "replica 1" in err and "its actor died" in err
    assert not any(rl.is_alive(pid) for pid in (pids[0], replacement))
    rl.assert_logged_once(replica_home / "predictions", load.acknowledged)


@pytest.mark.slow  # Ray actors started and drained in turn (about 30 s)
def test_ray_replicas_scale_up_under_load_and_drain_back_when_idle(
    ray_address: str, replica_home: Path, tmp_path: Path
) -> None:
    """--replicas 1:2 on Ray with short delays: the queue under load adds a second actor's
    replica, which is drained once idle; every prediction it acknowledged is in the log."""
    delays = ("--scale-up-delay-s", "1", "--scale-down-delay-s", "2")
    with _supervisor(
        ray_address, replica_home, tmp_path, "1:2",
        "--max-wait-ms", "100", "--target-queue", "50", *delays,
    ) as replicas:  # fmt: skip
        wait_ready(replicas.own_url(0), replicas.process)
        assert not rl.answers(replicas.own_url(1))
        load = rl.Load(replicas.url, replicas.own_url(0), rows=200)
        threads = [threading.Thread(target=load.shared, args=(2_000,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            rl.wait_for(lambda: rl.answers(replicas.own_url(1)), "a second replica under load")
            added = replicas.pid(1)
            assert _parent(added) != replicas.process.pid  # started by a Ray actor
        finally:
            load.stop.set()
            for thread in threads:
                thread.join()
        rl.wait_for(lambda: not rl.is_alive(added), "the added replica to drain once idle")
        assert rl.answers(replicas.own_url(0))
        assert replicas.stop() == 0
    err = replicas.stderr_path.read_text()
    assert "scaling up to 2 replicas" in err and "scaling down to 1 replicas" in err
    folder = replica_home / "predictions"
    recover_wal_files(folder)
    logged = set(read_predictions(folder, model="churn")["request_id"])  # 200 rows a request
    missing = [r for r in load.acknowledged if r not in logged]
    assert load.acknowledged and missing == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--ray-address", "127.0.0.1:{port}"), 6, "Cannot start or reach the Ray cluster at"),
        (("--executor", "dask"), 2, "Unknown --executor 'dask'; use local or ray."),
    ],
)
def test_ray_replicas_refuse_an_unreachable_cluster_and_an_unknown_executor(
    replica_home: Path, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    given = [a.format(port=free_port()) for a in args]
    process = _serve(
        replica_home, tmp_path, "churn@champion", "--executor", "ray", *given, "--port", "0"
    )
    assert process.wait(timeout=120) == code
    assert message in (tmp_path / "supervisor.err").read_text()


def test_without_ray_serve_on_ray_says_how_to_install_it(
    replica_home: Path, tmp_path: Path
) -> None:
    no_ray = "import sys; sys.modules['ray'] = None; from modelpilot.cli.main import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", no_ray, "serve", "churn@champion", "--executor", "ray"],
        env={**os.environ, "MODELPILOT_HOME": str(replica_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--executor ray needs Ray: pip install 'modelpilot[ray]'" in done.stderr


@pytest.mark.slow  # three Ray actors on the session cluster's two CPUs
def test_a_replica_the_cluster_has_no_cpu_for_says_so(
    ray_address: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray keeps an actor it cannot place pending without a word; the supervisor names the
    wait and the cluster's free CPUs instead of leaving a replica silently missing."""
    from modelpilot.serving.ray_replicas import RayActors, RayReplica

    monkeypatch.setattr(RayReplica, "placement_warning_s", 0.0)
    launcher = RayActors(lambda index: ["--help"], env={}, address=ray_address, num_cpus=2)
    launcher.open()
    replicas = [launcher.start(index) for index in range(3)]
    try:
        ray = launcher.ray
        assert ray is not None
        placed, _ = ray.wait([r.starting for r in replicas], num_returns=2, timeout=120)
        assert len(placed) == 2  # both CPUs taken (the actors stay while not polled)
        waiting = next(r for r in replicas if r.starting not in placed)
        with caplog.at_level("WARNING", logger="modelpilot.serving.ray_replicas"):
            assert waiting.poll() is None
            waiting.poll()  # said once, not at every poll
        said = [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]
        assert len(said) == 1
        assert f"replica {waiting.index} has waited" in said[0]
        assert "needs 1 CPU and the cluster has 0 of 2 CPUs free" in said[0]
    finally:
        for replica in replicas:
            replica.kill()
