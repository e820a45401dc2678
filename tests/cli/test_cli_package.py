"""``modelpilot package image`` through the installed executable: the context it writes, the
image's entry point run on the host (``modelpilot serve --bundle``), and its errors with their
exit codes (2 bad input, 3 not found, 6 no Docker daemon)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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

# Each command builds an image context (wheels, bundle) or serves a bundle: minutes on 2
# cores, so `make test-slow` runs them (CI runs both).
pytestmark = pytest.mark.slow


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model ``churn`` v1 and v2, ``champion`` on v2."""
    home = tmp_path_factory.mktemp("package") / "home"
    ws = Workspace(Settings(home=home))
    x = frame()
    for c in (1.0, 0.1):
        ws.log_model(
            LogisticRegression(C=c).fit(x, (x["a"] > 0).astype(int)),
            "churn",
            input_example=x.head(),
        )
    ws.set_alias("churn", "champion", 2)
    ws.close()
    return home


def run(exe: str, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELPILOT_HOME": str(home), **env},
        timeout=600,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def champion_context(exe: str, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("out") / "churn-context"
    result = run(exe, home, "package", "image", "churn@champion", "--keep-symbols",
                 "--context-only", str(folder))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Wrote the build context of churn/2 to {folder}" in result.stdout
    assert f"docker build --tag churn:2 {folder}" in result.stdout
    return folder


def test_context_only_writes_a_context_for_the_alias_target(champion_context: Path) -> None:
    names = sorted(p.name for p in champion_context.iterdir())
    assert names == [
        ".dockerignore", "Dockerfile", "image.json", "model", "requirements.txt", "runtime",
        "sbom.cdx.json", "wheelhouse",
    ]  # fmt: skip
    image = json.loads((champion_context / "image.json").read_text())
    assert image["entrypoint"] == ["modelpilot", "serve", "churn/2"]
    assert image["labels"]["io.modelpilot.version"] == "2"


def test_the_images_entry_point_serves_the_bundle_like_the_home(
    exe: str, home: Path, champion_context: Path, tmp_path: Path
) -> None:
    """What the container runs, run on the host: the bundle alone, settings from the image's
    environment variables, same predictions as the registered version; SIGTERM exits 0."""
    port = free_port()
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "container-home")}
    image_env = json.loads((champion_context / "image.json").read_text())["environment"]
    env |= {
        "MODELPILOT_SERVE_BUNDLE": str(champion_context / "model"),
        "MODELPILOT_SERVE_PORT": str(port),
        "MODELPILOT_SERVE_HOST": "127.0.0.1",
        "MODELPILOT_SERVE_DURABILITY": image_env["MODELPILOT_SERVE_DURABILITY"],
    }
    process = subprocess.Popen(
        [exe, "serve", "churn/2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        rows = frame().head(5)
        answer = httpx.post(f"{url}/predict/churn", json=rows.to_dict("records"))
        ws = Workspace(Settings(home=home))
        expected = ws.load_model("churn@champion").predict(rows)
        ws.close()
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 2
        assert answer.json()["predictions"] == expected.tolist()
        other = httpx.get(f"{url}/v2/models/churn/versions/1")
        assert other.status_code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        process.stderr.close()
    # uvicorn drains, then ends with the signal it got (as PID 1 in a container: exit 0)
    assert code in (0, -signal.SIGTERM) and "Traceback" not in stderr, stderr


def test_building_without_a_daemon_says_how_to_write_the_context(
    exe: str, home: Path, tmp_path: Path
) -> None:
    result = run(
        exe, home, "package", "image", "churn/1", "--tag", "churn:1",
        DOCKER_HOST=f"unix://{tmp_path}/no-daemon.sock",
    )  # fmt: skip
    assert result.returncode == 6
    message = error_line(result)
    assert "Cannot build the image" in message and "--context-only DIR" in message
    assert "buildah or kaniko" in message


def test_a_tag_or_a_context_folder_is_required(exe: str, home: Path) -> None:
    result = run(exe, home, "package", "image", "churn/1")
    assert result.returncode == 2
    assert "Give --tag NAME:TAG to build an image" in error_line(result)


def test_an_invalid_tag_is_refused(exe: str, home: Path) -> None:
    result = run(exe, home, "package", "image", "churn/1", "--tag", "Churn:4 latest")
    assert result.returncode == 2
    assert "Invalid image tag 'Churn:4 latest'" in error_line(result)


def test_a_base_with_another_python_exits_2_naming_both(
    exe: str, home: Path, tmp_path: Path
) -> None:
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    result = run(
        exe, home, "package", "image", "churn/1", "--context-only", str(tmp_path / "c"),
        "--base", "python:3.9-slim",
    )  # fmt: skip
    assert result.returncode == 2
    assert f"has Python 3.9, but the package was made with Python {minor}" in error_line(result)
    assert not (tmp_path / "c").exists()


def test_an_unknown_alias_exits_3(exe: str, home: Path, tmp_path: Path) -> None:
    result = run(exe, home, "package", "image", "churn@prod", "--context-only", str(tmp_path / "c"))
    assert result.returncode == 3
    assert "champion" in error_line(result)


def test_an_unknown_deployment_exits_3(exe: str, home: Path, tmp_path: Path) -> None:
    result = run(
        exe, home, "package", "image", "churn/1", "--context-only", str(tmp_path / "c"),
        "--deployment", "nowhere",
    )  # fmt: skip
    assert result.returncode == 3
    assert "nowhere" in error_line(result)


def test_a_deployment_image_follows_the_deployment(exe: str, home: Path, tmp_path: Path) -> None:
    assert run(exe, home, "deploy", "create", "churn-prod", "--model", "churn/1").returncode == 0
    folder = tmp_path / "c"
    result = run(
        exe, home, "package", "image", "churn/1", "--keep-symbols", "--context-only", str(folder),
        "--deployment", "churn-prod",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = json.loads((folder / "image.json").read_text())
    assert image["entrypoint"] == ["modelpilot", "serve", "churn-prod"]
    assert image["labels"]["io.modelpilot.deployment"] == "churn-prod"
    assert "MODELPILOT_SERVE_BUNDLE" not in image["environment"]


@pytest.fixture(autouse=True)
def _no_stray_files(home: Path) -> Iterator[None]:
    yield
    assert not list(home.glob("modelpilot-image-*"))
