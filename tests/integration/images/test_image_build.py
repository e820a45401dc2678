"""A real model image, built by the Docker daemon (``.ci/run`` starts ``dockerd`` when absent).

Few and slow on purpose: one image, one rebuild after a new version, one platform image; the
model image's one container answers like ``modelpilot serve`` on the host (predictions and
errors, simple JSON and OIP v2) and drains on SIGTERM under load, its log on a volume. No
registry: the base is a Debian root file system from ``debootstrap --variant=minbase`` with
Debian's Python, imported once with ``docker import`` and kept in the daemon between runs.
Containers run with ``--network host`` or ``none``, never the default bridge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.config import Settings
from modelpilot.predictions import read_predictions
from modelpilot.workspace import Workspace
from mp_server import free_port, wait_ready

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

# Debian's release whose python3 is this interpreter's minor version.
MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
BASE = f"modelpilot-test-base:py{MINOR}"


def docker(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.fixture(scope="module")
def base() -> str:
    """The local base image that .ci/image-base makes once per daemon (tests download nothing)."""
    assert docker("image", "inspect", BASE).returncode == 0, (
        f"the base image {BASE} is missing: run .ci/image-base (as .ci/run does)"
    )
    return BASE


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("image-build") / "home"
    ws = Workspace(Settings(home=home))
    x = frame()
    for c in (1.0, 0.2):
        model = LogisticRegression(C=c).fit(x, (x["a"] > 0).astype(int))
        ws.log_model(model, "churn", input_example=x.head())
    ws.close()
    return home


@pytest.fixture(scope="module")
def repository() -> Iterator[str]:
    name = f"modelpilot-test-churn-{uuid.uuid4().hex[:8]}"
    yield name
    for version in (1, 2):
        docker("rmi", "--force", f"{name}:{version}")


def package(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("modelpilot", path=search)
    assert exe is not None
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELPILOT_HOME": str(home)},
        timeout=1800,
        check=False,
    )


def layers(tag: str) -> list[str]:
    result = docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", tag)
    return list(json.loads(result.stdout))


def requests_and_errors(rows: pd.DataFrame) -> list[tuple[str, object]]:
    """Requests answered alike in and out of the image: predictions (simple JSON, OIP v2)
    and refusals (a missing column, a wrong OIP v2 datatype, a body that is no JSON list)."""

    def tensor(column: str, values: list[object], datatype: str = "FP64") -> dict[str, object]:
        return {"name": column, "shape": [len(values)], "datatype": datatype, "data": values}

    v2 = "/v2/models/churn/infer"
    return [
        ("/predict/churn", rows.to_dict("records")),
        (v2, {"inputs": [tensor(c, rows[c].tolist()) for c in rows.columns]}),
        ("/predict/churn", [{"a": 0.5}]),
        (v2, {"inputs": [tensor("a", ["x"], "BYTES"), tensor("b", [0.1])]}),
        ("/predict/churn", {"rows": "none"}),
        ("/predict/nobody", rows.to_dict("records")),
    ]


def without_ids(body: dict[str, object]) -> dict[str, object]:
    """A response body without what differs between any two answers (request ids)."""
    return {k: v for k, v in body.items() if k not in {"request_id", "id"}}


def load_until_sigterm(url: str, name: str, record: list[dict[str, object]]) -> list[str]:
    """Four clients post predictions (bounded); once 100 are acknowledged the container gets
    SIGTERM (``docker stop``). The request ids answered 200, in any order."""
    acknowledged: list[str] = []
    lock = threading.Lock()

    def client_loop() -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(1000):  # bounded
                try:
                    reply = client.post(f"{url}/predict/churn", json=record)
                except httpx.TransportError:
                    return  # the server is gone
                if reply.status_code == 200:
                    with lock:
                        acknowledged.append(reply.json()["request_id"])

    clients = [threading.Thread(target=client_loop) for _ in range(4)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(acknowledged) < 100:
        time.sleep(0.01)  # waiting for load to build up, bounded by the deadline
    assert docker("stop", "--time", "30", name).returncode == 0  # SIGTERM, then waits
    for client in clients:
        client.join()
    assert len(acknowledged) >= 100
    return acknowledged


def test_a_model_image_serves_like_the_host_and_rebuilds_only_the_model(
    base: str, home: Path, repository: str, tmp_path: Path
) -> None:
    first = package(
        home, "package", "image", "churn/1", "--tag", f"{repository}:1", "--base", base,
        "--network", "host",
    )  # fmt: skip
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr
    assert f"Built {repository}:1 (sha256:" in first.stdout and "MiB in" in first.stdout

    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}",
                               f"{repository}:1").stdout)  # fmt: skip
    ws = Workspace(Settings(home=home))
    mv = ws.registry.get_version("churn/1")
    assert labels["io.modelpilot.package-digest"] == f"sha256:{mv.package_digest}"
    user = docker("run", "--rm", "--network", "none", "--entrypoint", "id", f"{repository}:1",
                  "-u")  # fmt: skip
    assert user.stdout.strip() == "10001"

    # the SBOM inside the image is the one a context holds, byte for byte
    package(home, "package", "image", "churn/1", "--context-only", str(tmp_path / "ctx"))
    inside = docker("run", "--rm", "--network", "none", "--entrypoint", "cat", f"{repository}:1",
                    "/opt/modelpilot/sbom.cdx.json")  # fmt: skip
    assert inside.stdout == (tmp_path / "ctx" / "sbom.cdx.json").read_text()

    rows = frame().head(5)
    host_port, port = free_port(), free_port()
    host = subprocess.Popen(
        [sys.executable, "-m", "modelpilot.cli.main", "serve", "churn/1", "--host", "127.0.0.1",
         "--port", str(host_port), "--no-log"],
        env={**os.environ, "MODELPILOT_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    logs = tmp_path / "home"  # the image's home as a volume: the prediction log outlives it
    logs.mkdir()
    logs.chmod(0o777)  # the image's user (10001) writes it
    name = f"{repository}-run"
    started = docker("run", "-d", "--name", name, "--network", "host", "-e",
                     f"MODELPILOT_SERVE_PORT={port}", "-e", "MODELPILOT_SERVE_DURABILITY=sync",
                     "-v", f"{logs}:/var/lib/modelpilot", f"{repository}:1")  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        url, host_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{host_port}"
        wait_ready(host_url, host, deadline_s=120)
        wait_ready(url, deadline_s=120)
        expected = ws.load_model("churn/1").predict(rows).tolist()
        statuses = []
        for route, body in requests_and_errors(rows):
            inside, outside = (
                httpx.post(url + route, json=body),
                httpx.post(host_url + route, json=body),
            )
            assert inside.status_code == outside.status_code, (route, body, inside.text)
            statuses.append(inside.status_code)
            assert without_ids(inside.json()) == without_ids(outside.json()), (route, body)
            if route == "/predict/churn" and inside.status_code == 200:
                assert inside.json()["predictions"] == expected, docker("logs", name).stderr
        assert statuses == [200, 200, 422, 422, 422, 404]  # answers, then refusals

        acknowledged = load_until_sigterm(url, name, rows.head(1).to_dict("records"))
        state = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert state == "0", docker("logs", name).stderr
        logged = set(read_predictions(logs / "predictions", model="churn")["request_id"])
        missing = set(acknowledged) - logged
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged not in the log"
    finally:
        docker("rm", "--force", name)
        host.terminate()
        host.wait(timeout=60)
        ws.close()

    second = package(
        home, "package", "image", "churn/2", "--tag", f"{repository}:2", "--base", base,
        "--network", "host",
    )  # fmt: skip
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr
    before, after = layers(f"{repository}:1"), layers(f"{repository}:2")
    # only the model, the SBOM and the smoke step's (empty) layer differ
    assert len(before) == len(after) and before[:-3] == after[:-3]
    card = package(home, "models", "card", "churn/2")
    image_id = docker("image", "inspect", "--format", "{{.Id}}", f"{repository}:2").stdout.strip()
    assert image_id in card.stdout


def test_the_platform_image_runs_the_control_plane_as_a_non_root_user(
    base: str, home: Path, tmp_path: Path
) -> None:
    tag = f"modelpilot-test-platform:{uuid.uuid4().hex[:8]}"
    built = package(home, "package", "image", "modelpilot", "--tag", tag, "--base", base,
                    "--network", "host")  # fmt: skip
    try:
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr
        config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", tag).stdout)
        assert config["User"] == "10001:10001" and config["Entrypoint"] == ["modelpilot"]
        assert config["Cmd"][0] == "server" and "/health" in " ".join(config["Healthcheck"]["Test"])
        assert config["Labels"]["org.opencontainers.image.title"] == "modelpilot"
        sbom = json.loads(docker("run", "--rm", "--network", "none", "--entrypoint", "cat", tag,
                                 "/opt/modelpilot/sbom.cdx.json").stdout)  # fmt: skip
        assert sbom["metadata"]["component"]["type"] == "application"
        assert {"duckdb", "fastapi", "boto3"} <= {c["name"] for c in sbom["components"]}
        port = free_port()
        name = f"{tag.replace(':', '-')}-run"
        started = docker("run", "-d", "--name", name, "--network", "host", tag, "server",
                         "--host", "127.0.0.1", "--port", str(port))  # fmt: skip
        assert started.returncode == 0, started.stderr
        try:
            wait_ready(f"http://127.0.0.1:{port}", deadline_s=120, route="/health")
            assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
        finally:
            docker("rm", "--force", name)
    finally:
        docker("rmi", "--force", tag)
