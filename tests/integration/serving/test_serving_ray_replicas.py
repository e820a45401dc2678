"""`modelpilot serve --executor ray --replicas N`: replicas as Ray actors, each running the
data plane's own process, sharing the port on the one node of the session's Ray cluster
(``ray_address`` in tests/conftest.py).

The supervisor is started as users start it, joining the cluster at ``--ray-address``; each
replica also listens on its own port (``--replica-ports``) so the test can follow one
replica's process, and through its parent, the actor that holds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import replica_load as rl

from conftest import HERE, free_port, wait_ready


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


@pytest.fixture
def ray_replicas(ray_address: str, replica_home: Path, tmp_path: Path) -> Iterator[rl.Replicas]:
    port, base = free_port(), rl.free_port_pair()
    process = _serve(
        replica_home,
        tmp_path,
        *("churn@champion", "--durability", "sync", "--executor", "ray"),
        *("--ray-address", ray_address, "--replicas", "2"),
        *("--port", str(port), "--replica-ports", str(base)),
    )
    replicas = rl.Replicas(process, port, [base, base + 1], tmp_path / "supervisor.err")
    try:
        for index in (0, 1):
            wait_ready(replicas.own_url(index), process)
        yield replicas
    finally:
        if process.poll() is None:
            process.kill()  # Ray kills its actors, and the kernel their replicas
            process.wait()


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
