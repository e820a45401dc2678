"""`modelpilot score --executor ray` on two machines: the actors on a node that shares no
folder with the caller.

The second machine is a container (Debian's Docker, ``--network host``) that runs
``ray start --address`` with this Python and this checkout mounted read-only and nothing else
of this machine: no home, no artifact folder, its own /tmp. The head runs here without CPUs
(a Ray driver runs on a node of its cluster, as the caller does), so every actor lands in the
container and loads the package from where the settings say: an S3-compatible bucket (the
session's SeaweedFS) works; a local artifact folder cannot, and the error says so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from modelpilot.config import Settings
from modelpilot.workspace import Workspace
from mp_server import free_port, wait_ready
from s3_server import RunningS3

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

BASE = f"modelpilot-test-base:py{sys.version_info.major}.{sys.version_info.minor}"
REPOSITORY = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
NO_AUTH = {"RAY_AUTH_MODE": "disabled"}  # token auth is another test's (the hint on failure)
# `ray start` waits for its raylet to register with the GCS: each lookup waits up to this
# RayConfig value (30 s by default), which a loaded two-core CI host missed three starts in a
# row; the lookup returns as soon as the node registers, so a longer bound costs nothing
PATIENT = {**NO_AUTH, "RAY_raylet_start_wait_time_s": "120"}


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def cluster(s3_server: RunningS3) -> Iterator[tuple[str, str]]:
    """(the head's address, the worker container's name): a head here with no CPUs, and a
    node of 2 CPUs in a container holding the S3 credentials, as each node of a team's
    cluster holds its own."""
    assert _docker("image", "inspect", BASE).returncode == 0, (
        f"the base image {BASE} is missing: run .ci/image-base (as .ci/run does)"
    )
    # a short path of its own: Ray's socket paths must fit in 107 bytes, and `ray start`
    # writes its address file there (a later `ray.init()` elsewhere must not join this one)
    variables = [f"{k}={v}" for k, v in {**PATIENT, **s3_server.env()}.items()]
    name = f"modelpilot-ray-node-{uuid.uuid4().hex[:8]}"
    temp = Path(tempfile.mkdtemp(prefix="mp-rn-", dir="/tmp"))
    try:
        # Ray gives a node a fixed 30 s to register; on a loaded two-core CI host the head
        # or the container's node sometimes misses it: a fresh start (in a fresh folder, 3 at
        # most) is tried; the last failure carries the head's own logs
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                address = _start_cluster(temp, variables, name)
                break
            except NodeTimedOut:
                _docker("rm", "--force", name)
                _stop_processes_under(temp)
                if attempt == START_ATTEMPTS:
                    raise
                shutil.rmtree(temp, ignore_errors=True)
                temp = Path(tempfile.mkdtemp(prefix="mp-rn-", dir="/tmp"))
        yield address, name
    finally:
        _docker("rm", "--force", name)
        _stop_processes_under(temp)
        shutil.rmtree(temp, ignore_errors=True)


START_ATTEMPTS = 3
TIMED_OUT = "timed out during startup"


class NodeTimedOut(Exception):
    """Ray's "The current node timed out during startup" (the head's or the container's)."""


def _start_cluster(temp: Path, variables: list[str], name: str) -> str:
    """The head here and the container's node joined to it: the head's address."""
    port = free_port()
    env = {**os.environ, **PATIENT}
    head = subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--port", str(port), "--num-cpus", "0",
         "--include-dashboard", "false", "--dashboard-port", str(free_port()),
         "--dashboard-agent-listen-port", str(free_port()), "--disable-usage-stats",
         "--temp-dir", str(temp)],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if head.returncode != 0:
        if TIMED_OUT in head.stderr + head.stdout:
            raise NodeTimedOut(head.stderr[-1000:] + _ray_logs(temp))
        raise AssertionError(f"ray start --head failed: {head.stderr[-3000:]}")
    python = Path(sys.base_prefix).resolve()
    started = _docker(
        "run", "-d", "--name", name, "--network", "host", "--shm-size", "512m",
        *(arg for variable in variables for arg in ("-e", variable)),
        "-v", f"{python}:{python}:ro", "-v", f"{REPOSITORY}:{REPOSITORY}:ro", BASE,
        str(BIN / "ray"), "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "2",
        "--dashboard-agent-listen-port", str(free_port()), "--disable-usage-stats",
        "--block",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    _wait_for_cpus(f"127.0.0.1:{port}", env, name)
    return f"127.0.0.1:{port}"


def _ray_logs(temp: Path) -> str:
    """The ends of the head's own logs (raylet, GCS, agents): why its raylet did not register
    is there, not in ``ray start``'s output."""
    logs = temp / "session_latest" / "logs"
    names = ("raylet.out", "raylet.err", "gcs_server.out", "gcs_server.err", "dashboard_agent.err",
             "runtime_env_agent.err")  # fmt: skip
    parts = []
    for name in names:
        path = logs / name
        if path.is_file():
            lines = path.read_text(errors="replace").splitlines()
            kept = [line[:300] for line in lines if not line.startswith("[state-dump]")]
            parts.append(f"\n--- {name} (end) ---\n" + "\n".join(kept[-20:]))
    return "".join(parts) or f"\n(no Ray logs under {logs})"


def _wait_for_cpus(address: str, env: dict[str, str], container: str) -> None:
    """Until the cluster counts the container's 2 CPUs (bounded: 180 s)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = subprocess.run(
            [str(BIN / "ray"), "status", "--address", address],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if "/2.0 CPU" in status.stdout:
            return
        logs = _docker("logs", container)
        if TIMED_OUT in logs.stdout + logs.stderr:
            raise NodeTimedOut(logs.stderr[-2000:])
        time.sleep(1)  # polling a node that is joining; bounded by the deadline
    raise AssertionError(f"the node never joined: {_docker('logs', container).stderr[-3000:]}")


def _stop_processes_under(temp: Path) -> None:
    """Stop this head's processes only (``ray stop`` would stop every Ray of the machine,
    the session's cluster too): those whose command line names its temp folder."""

    def ours() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and str(temp) in (entry / "cmdline").read_text():
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    for pid in ours():
        os.kill(pid, signal.SIGKILL)  # the head's state goes with its folder


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])


def _home(path: Path, artifacts_uri: str | None, store_uri: str | None = None) -> Path:
    x = _frame(500, 0)
    model = HistGradientBoostingClassifier(max_iter=20).fit(x, x["a"] + x["b"] > 0)
    settings = Settings(home=path, artifacts_uri=artifacts_uri, store_uri=store_uri)
    with closing(Workspace(settings)) as ws:
        ws.log_model(model, "hgb", input_example=x.head())
    return path


def _score(
    address: str, env: dict[str, str], source: Path, target: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "modelpilot"), "score", "hgb/1", str(source), "-o", str(target),
         "--executor", "ray", "--ray-address", address, "--chunk-rows", "500"],
        env={**os.environ, **NO_AUTH, **env}, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def test_actors_on_another_machine_load_the_model_from_s3_and_write_the_local_output(
    cluster: tuple[str, str], s3_server: RunningS3, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    address, container = cluster
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    uri = f"s3://{s3_server.bucket}/ray-nodes-{uuid.uuid4().hex[:8]}"
    home = _home(tmp_path / "home", uri)
    source = tmp_path / "in.parquet"
    _frame(3_000, 1).to_parquet(source, row_group_size=700)
    env = {"MODELPILOT_HOME": str(home), "MODELPILOT_ARTIFACTS_URI": uri}

    done = _score(address, env, source, tmp_path / "ray.parquet")
    assert done.returncode == 0, done.stderr
    with closing(Workspace(Settings(home=home, artifacts_uri=uri))) as ws:
        ws.score("hgb/1", source, tmp_path / "local.parquet")
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "local.parquet"))
    # the actors ran in the container: its own cache holds the blobs they fetched from S3
    cached = _docker("exec", container, "find", str(home / "cache" / "blobs"), "-type", "f")
    assert cached.returncode == 0 and cached.stdout.strip(), cached.stderr


def test_a_local_artifact_folder_the_node_cannot_see_is_named_with_the_fix(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    address, _ = cluster
    home = _home(tmp_path / "home", None)
    source = tmp_path / "in.parquet"
    _frame(100, 2).to_parquet(source)
    done = _score(address, {"MODELPILOT_HOME": str(home)}, source, tmp_path / "out.parquet")
    assert done.returncode == 2, done.stderr
    assert f"cannot see the artifact folder {home / 'artifacts'}" in done.stderr
    assert "MODELPILOT_ARTIFACTS_URI=s3://" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.parquet").exists()


def _tune(address: str, home: Path, store_uri: str) -> dict[str, Any]:
    """tune() with 4 trials, 2 at once, on the cluster (two_machine_trials.py, its own Ray
    driver): the in_container metric of each child run, or the error's message."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("two_machine_trials.py")), str(home),
         store_uri, address],
        env={**os.environ, **NO_AUTH}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_trials_on_another_machine_record_their_runs_in_postgresql(
    cluster: tuple[str, str], pg_schema_uri: str, tmp_path: Path
) -> None:
    result = _tune(cluster[0], tmp_path / "home", pg_schema_uri)
    assert result == {"children": [1.0] * 4}  # every trial ran on the other node, and is kept


def test_trials_on_a_machine_without_the_sqlite_store_are_refused_naming_the_fix(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    message = _tune(cluster[0], tmp_path / "home", "-")["error"]
    assert f"SQLite file {tmp_path / 'home' / 'modelpilot.db'} is not on this machine" in message
    assert "PostgreSQL (MODELPILOT_STORE_URI=postgresql://" in message


TINY = REPOSITORY / "tests" / "integration" / "pipelines" / "tiny_pipeline.py"  # on both nodes


def _pipeline(address: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "modelpilot"), "pipelines", "run", f"{TINY}:tiny", "--param", "x=21",
         "--executor", "ray", "--ray-address", address],
        env={**os.environ, **NO_AUTH, **env}, cwd=cwd, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def test_a_pipeline_step_on_another_machine_records_to_postgresql_and_s3(
    cluster: tuple[str, str], pg_schema_uri: str, s3_server: RunningS3, tmp_path: Path
) -> None:
    address, _ = cluster
    env = {
        "MODELPILOT_HOME": str(tmp_path / "home"),
        "MODELPILOT_STORE_URI": pg_schema_uri,
        "MODELPILOT_ARTIFACTS_URI": f"s3://{s3_server.bucket}/pipe-{uuid.uuid4().hex[:8]}",
        **s3_server.env(),
    }
    done = _pipeline(address, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout


def test_a_pipeline_step_on_a_machine_without_the_sqlite_store_fails_naming_the_fix(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    address, _ = cluster
    home = tmp_path / "home"
    with closing(Workspace(Settings(home=home))):
        pass  # the store exists here, not on the other machine
    done = _pipeline(address, {"MODELPILOT_HOME": str(home)}, tmp_path)
    assert done.returncode == 11, done.stdout + done.stderr
    output = " ".join((done.stdout + done.stderr).split())  # Rich wraps long lines
    assert f"SQLite file {home / 'modelpilot.db'} is not on this machine" in output
    assert "PostgreSQL (MODELPILOT_STORE_URI=postgresql://" in output


def test_a_serving_replica_on_a_machine_without_the_sqlite_store_stops_naming_the_fix(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    """`serve --executor ray`: the replica lands on the other node, refuses there (where it
    would open an empty store and find no model), and the supervisor ends with its exit
    code and its words."""
    address, _ = cluster
    home = _home(tmp_path / "home", None)
    done = subprocess.run(
        [str(BIN / "modelpilot"), "serve", "hgb/1", "--executor", "ray", "--ray-address",
         address, "--replicas", "1", "--port", str(free_port())],
        env={**os.environ, **NO_AUTH, "MODELPILOT_HOME": str(home)}, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    output = " ".join((done.stdout + done.stderr).split())
    assert f"SQLite file {home / 'modelpilot.db'} is not on this machine" in output


def test_a_serving_replica_on_another_machine_answers_and_its_log_reaches_s3(
    cluster: tuple[str, str], pg_schema_uri: str, s3_server: RunningS3, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """`serve --executor ray` with the store in PostgreSQL and the blobs and prediction log
    in S3: the replica on the other node answers on this machine's port (host network), and
    after a drain every acknowledged prediction is readable here from the bucket."""
    address, _ = cluster
    prefix = f"s3://{s3_server.bucket}/serve-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, **NO_AUTH, **s3_server.env(),
        "MODELPILOT_HOME": str(tmp_path / "home"), "MODELPILOT_STORE_URI": pg_schema_uri,
        "MODELPILOT_ARTIFACTS_URI": f"{prefix}/artifacts",
        "MODELPILOT_PREDICTIONS_URI": f"{prefix}/predictions",
    }  # fmt: skip
    settings = Settings(home=tmp_path / "home", store_uri=pg_schema_uri,
                        artifacts_uri=f"{prefix}/artifacts")  # fmt: skip
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)  # boto3 here, for the registration below
    _home(settings.home, settings.artifacts_uri, store_uri=pg_schema_uri)
    port = free_port()
    with (tmp_path / "serve.err").open("wb") as stderr:
        supervisor = subprocess.Popen(
            [str(BIN / "modelpilot"), "serve", "hgb/1", "--executor", "ray", "--ray-address",
             address, "--replicas", "1", "--port", str(port), "--durability", "sync"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}", supervisor)
        rows = _frame(20, 3).to_dict(orient="records")
        for row in rows:
            reply = httpx.post(f"http://127.0.0.1:{port}/predict/hgb", json=[row], timeout=30)
            assert reply.status_code == 200, reply.text
    finally:
        supervisor.send_signal(signal.SIGTERM)  # drain: the replica ships its log and ends
        code = supervisor.wait(timeout=120)
    assert code == 0, (tmp_path / "serve.err").read_text()
    read = subprocess.run(
        [sys.executable, "-c", "import modelpilot as mp; print(len(mp.read_predictions('hgb')))"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert int(read.stdout.strip().splitlines()[-1]) == 20
