"""Building a context with the Docker daemon, through the ``docker`` command.

The command rather than an SDK: it is what every Docker install has, it honours the user's
``DOCKER_HOST`` and contexts, and modelpilot gains no dependency. No daemon, no build: the
error says how to write the context for another builder.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from modelpilot.errors import ModelpilotError, Unavailable
from modelpilot.images.context import raise_python_mismatch

_PROBE_TIMEOUT_S = 30
_BUILD_TIMEOUT_S = 3600
_HOW_TO = (
    "Write the build context instead with --context-only DIR and build it with docker, buildah "
    "or kaniko where a builder runs (docs/images.md)."
)


@dataclass(frozen=True)
class BuiltImage:
    """What a build made: the image id (``sha256:…``), its size and how long it took."""

    tag: str
    image_id: str
    size_bytes: int
    build_s: float


def require_daemon() -> str:
    """The ``docker`` command, once the daemon answers (Unavailable otherwise)."""
    docker = shutil.which("docker")
    if docker is None:
        raise Unavailable(f"Cannot build the image: there is no docker command here. {_HOW_TO}")
    probe = _run([docker, "version", "--format", "{{.Server.Version}}"], _PROBE_TIMEOUT_S)
    if probe.returncode != 0 or not probe.stdout.strip():
        said = (probe.stderr.strip().splitlines() or ["no answer"])[-1][:300]
        raise Unavailable(
            f"Cannot build the image: the Docker daemon does not answer (docker said: {said}). "
            f"Start it, or set DOCKER_HOST. {_HOW_TO}"
        )
    return docker


def check_base_python(docker: str, base: str, python_minor: str) -> bool:
    """Run the base's python3 when the image is already here; refuse another minor version.

    False when the base is not here yet (the Dockerfile's first step checks it then)."""
    if _run([docker, "image", "inspect", base], _PROBE_TIMEOUT_S).returncode != 0:
        return False
    probe = _run(
        [docker, "run", "--rm", "--network", "none", "--entrypoint", "python3", base, "-c",
         "import sys; print('%d.%d' % sys.version_info[:2])"],
        _PROBE_TIMEOUT_S,
    )  # fmt: skip
    found = probe.stdout.strip()
    if probe.returncode != 0:
        raise_python_mismatch(base, "none (python3 did not run)", python_minor)
    if found != python_minor:
        raise_python_mismatch(base, found, python_minor)
    return True


def build(docker: str, context: Path, tag: str, *, network: str | None = None) -> BuiltImage:
    """``docker build -t tag context``; the build's own output goes to the terminal."""
    command = [docker, "build", "--tag", tag]
    if network:
        command += ["--network", network]
    started = time.perf_counter()
    try:
        done = subprocess.run([*command, str(context)], timeout=_BUILD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelpilotError(f"docker build of {tag} did not finish: {exc}.") from exc
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise ModelpilotError(
            f"docker build of {tag} failed (exit {done.returncode}); its output is above. The "
            f"context is kept in {context}."
        )
    inspect = _run(
        [docker, "image", "inspect", "--format", "{{.Id}} {{.Size}}", tag], _PROBE_TIMEOUT_S
    )
    image_id, _, size = inspect.stdout.strip().partition(" ")
    return BuiltImage(tag, image_id, int(size or 0), seconds)


def _run(command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(command, 1, "", str(exc))
