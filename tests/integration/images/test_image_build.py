"""A real model image, built by the Docker daemon (``.ci/run`` starts ``dockerd`` when absent).

Few and slow on purpose: one image, one rebuild after a new version. No registry: the base is
a Debian root file system from ``debootstrap --variant=minbase`` with Debian's Python,
imported once with ``docker import`` and kept in the daemon between runs. Containers run with
``--network host`` or ``none``, never the default bridge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.config import Settings
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

    port = free_port()
    name = f"{repository}-run"
    started = docker("run", "-d", "--name", name, "--network", "host", "-e",
                     f"MODELPILOT_SERVE_PORT={port}", f"{repository}:1")  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, deadline_s=120)
        rows = frame().head(5)
        answer = httpx.post(f"{url}/predict/churn", json=rows.to_dict("records"))
        assert answer.status_code == 200, answer.text + docker("logs", name).stderr
        assert answer.json()["predictions"] == ws.load_model("churn/1").predict(rows).tolist()
        assert docker("stop", "--time", "20", name).returncode == 0
        state = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert state == "0", docker("logs", name).stderr
    finally:
        docker("rm", "--force", name)
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
