"""Container images of models, measured (issue 19): size, build and rebuild time, start to
ready, and whether the image predicts what the host predicts.

    python benchmarks/images.py --base modelpilot-test-base:py3.11   # .ci/image-base makes it
    python benchmarks/images.py --base python:3.11-slim --platform   # also the platform image

In a fresh home it logs a scikit-learn model (LogisticRegression on 2 columns), builds its
image with the installed ``modelpilot package image`` (``--network host``), registers a second
version on the same requirements and builds again (only the model layers change), then runs
the first image (``docker run --network host``) and times ``docker run`` to the first 200 of
``/v2/health/ready``, and compares a batch's predictions with the host's. Prints each image's
size, its layers (``docker history``), the build times and the start-to-ready time; exits 1
when the predictions differ. Images are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelpilot.config import Settings
from modelpilot.workspace import Workspace


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def modelpilot(home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    exe = shutil.which("modelpilot", path=f"{Path(sys.executable).parent}{os.pathsep}"
                       f"{os.environ.get('PATH', '')}")  # fmt: skip
    assert exe is not None, "install modelpilot first"
    started = time.perf_counter()
    done = subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELPILOT_HOME": str(home)},
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"modelpilot {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr}")
    return done, time.perf_counter() - started


def build_seconds(output: str) -> float:
    """The ``docker build`` time the command printed (``… MiB in 12.3 s``)."""
    return float(output.rsplit(" in ", 1)[1].split(" s")[0])


def size_mb(tag: str) -> float:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout) / 1e6


def history(tag: str) -> list[str]:
    rows = docker("history", "--format", "{{.Size}}\t{{.CreatedBy}}", tag).stdout.splitlines()
    return [r[:110] for r in rows if not r.startswith("0B")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_to_ready(tag: str, rows: pd.DataFrame) -> tuple[float, list[object]]:
    port = free_port()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    run = docker("run", "-d", "--name", name, "--network", "host",
                 "-e", f"MODELPILOT_SERVE_PORT={port}", tag)  # fmt: skip
    assert run.returncode == 0, run.stderr
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - started > 120:
                sys.exit(f"{tag} not ready after 120 s:\n{docker('logs', name).stderr}")
            time.sleep(0.05)  # polling period
        ready = time.perf_counter() - started
        answer = httpx.post(f"{url}/predict/churn", json=rows.to_dict("records"))
        answer.raise_for_status()
        return ready, list(answer.json()["predictions"])
    finally:
        docker("rm", "--force", name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    parser.add_argument("--base", default=f"python:{minor}-slim")
    parser.add_argument("--platform", action="store_true", help="Also build the platform image.")
    options = parser.parse_args()
    repository = f"modelpilot-bench-{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="modelpilot-bench-images-"))
    tags = [f"{repository}:1", f"{repository}:2"]
    try:
        ws = Workspace(Settings(home=home))
        x = pd.DataFrame(np.random.default_rng(3).normal(size=(500, 2)), columns=["a", "b"])
        ws.log_model(LogisticRegression().fit(x, (x["a"] > 0).astype(int)), "churn",
                     input_example=x.head())  # fmt: skip
        common = ("--base", options.base, "--network", "host")
        first, first_s = modelpilot(home, "package", "image", "churn/1", "--tag", tags[0], *common)
        ws.log_model(LogisticRegression(C=0.1).fit(x, (x["a"] > 0).astype(int)), "churn",
                     input_example=x.head())  # fmt: skip
        second, second_s = modelpilot(home, "package", "image", "churn/2", "--tag", tags[1],
                                      *common)  # fmt: skip
        rows = x.head(50)
        host = ws.load_model("churn/1").predict(rows).tolist()
        ws.close()
        ready_s, served = start_to_ready(tags[0], rows)
        print(f"base {options.base}: {size_mb(options.base):.0f} MB")
        print(f"model image: {size_mb(tags[0]):.0f} MB; build {build_seconds(first.stdout):.1f} s "
              f"in docker ({first_s:.1f} s for the command)")  # fmt: skip
        print("layers (docker history, newest first):")
        for row in history(tags[0]):
            print(f"  {row}")
        print(f"rebuild after a new version: {build_seconds(second.stdout):.1f} s in docker "
              f"({second_s:.1f} s for the command)")  # fmt: skip
        print(f"start to ready: {ready_s:.2f} s")
        print(f"predictions equal the host's: {served == host}")
        if options.platform:
            tags.append(f"{repository}-platform:1")
            platform, platform_s = modelpilot(home, "package", "image", "modelpilot", "--tag",
                                              tags[-1], *common)  # fmt: skip
            seconds = build_seconds(platform.stdout)
            print(f"platform image: {size_mb(tags[-1]):.0f} MB; build {seconds:.1f} s in docker "
                  f"({platform_s:.1f} s for the command)")  # fmt: skip
            for row in history(tags[-1]):
                print(f"  {row}")
        print(json.dumps({"sizes_mb": {t: round(size_mb(t)) for t in tags},
                          "size_bytes": {t: round(size_mb(t) * 1e6) for t in tags}}))  # fmt: skip
        if served != host:
            sys.exit(1)
    finally:
        for tag in tags:
            docker("rmi", "--force", tag)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
