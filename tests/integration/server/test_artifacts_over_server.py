"""Blobs through a real ``modelpilot server`` process: streamed uploads and downloads, digest
checks, the size limit, abandoned uploads, skipping what the server has, and bounded memory.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelpilot.artifacts import sha256_bytes, sha256_file
from modelpilot.client import HttpArtifactStore, HttpRegistry
from modelpilot.errors import CorruptArtifact, InvalidInput, PayloadTooLarge
from modelpilot.server.auth import Role
from mp_server import RunningServer, make_token, start_server

MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("artifacts-server")
    running = start_server(
        home, f"sqlite:///{home / 'mp.db'}", env={"MODELPILOT_MAX_UPLOAD_BYTES": str(64 * MiB)}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token(server: RunningServer) -> str:
    return make_token(server.store_uri, "blobs", Role.EDITOR)


def _blob_root(server: RunningServer) -> Path:
    return server.home / "artifacts"


def _temp_files(server: RunningServer) -> list[Path]:
    return list(_blob_root(server).glob(".tmp-*"))


def _wait_for(condition: object, deadline_s: float = 30) -> None:
    """Poll a condition on another process's files, bounded by a deadline."""
    deadline = time.monotonic() + deadline_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)  # watching a separate process; bounded by the deadline


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting requests by method (to see which calls were skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append(request.method)
        return super().handle_request(request)


def test_a_body_that_does_not_match_its_digest_is_refused_and_not_stored(
    server: RunningServer, token: str
) -> None:
    claimed = sha256_bytes(b"what the client said")
    reply = httpx.put(
        f"{server.url}/api/v1/artifacts/{claimed}",
        content=b"something else",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 422
    assert "the body's sha256 is" in reply.json()["error"]["message"]
    blobs = HttpArtifactStore(server.url, token=token)
    assert not blobs.exists(claimed)
    assert _temp_files(server) == []
    blobs.close()


def test_uploads_over_the_size_limit_are_refused_413(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        out.truncate(65 * MiB)  # declared in Content-Length: refused before it is read
    blobs = HttpArtifactStore(server.url, token=token)
    too_large = "larger than this server accepts.*the limit is 67,108,864"
    with pytest.raises(PayloadTooLarge, match=too_large):
        blobs.put_file(big)

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while counting
        for _ in range(65):
            yield b"\0" * MiB

    reply = httpx.put(
        f"{server.url}/api/v1/artifacts/{sha256_file(big)}",
        content=chunks(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 413
    assert not blobs.exists(sha256_file(big))
    assert _temp_files(server) == []
    blobs.close()


def test_a_client_that_disconnects_mid_upload_leaves_nothing(
    server: RunningServer, token: str
) -> None:
    digest = "ab" * 32
    head = (
        f"PUT /api/v1/artifacts/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {32 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + b"\1" * (4 * MiB))
        _wait_for(lambda: _temp_files(server) != [])  # the server is writing it
    _wait_for(lambda: _temp_files(server) == [])  # and removes it once we are gone
    blobs = HttpArtifactStore(server.url, token=token)
    assert not blobs.exists(digest)
    assert not (_blob_root(server) / digest[:2] / digest[2:]).exists()
    assert httpx.get(f"{server.url}/health").status_code == 200
    blobs.close()


def test_the_client_skips_blobs_the_server_already_has(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    transport = CountingTransport()
    blobs = HttpArtifactStore(server.url, token=token, transport=transport)
    file = tmp_path / "weights.bin"
    file.write_bytes(os.urandom(3 * MiB))
    assert blobs.put_file(file) == blobs.put_file(file) == sha256_file(file)
    assert transport.methods == ["HEAD", "PUT", "HEAD"]
    blobs.close()


def test_a_blob_changed_on_the_server_is_refused_and_not_kept(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    blobs = HttpArtifactStore(server.url, token=token)
    digest = blobs.put_bytes(b"original bytes " * 1000)
    stored = _blob_root(server) / digest[:2] / digest[2:]
    stored.write_bytes(b"tampered bytes " * 1000)
    with pytest.raises(CorruptArtifact, match="does not match its sha256; nothing was kept"):
        blobs.fetch_to(digest, tmp_path / "copy.bin")
    with pytest.raises(CorruptArtifact, match="does not match its sha256"):
        blobs.get_bytes(digest)
    assert list(tmp_path.iterdir()) == []
    blobs.close()


def test_registering_a_package_the_server_does_not_hold_is_refused(
    server: RunningServer, token: str
) -> None:
    client = HttpRegistry(server.url, token=token)
    with pytest.raises(InvalidInput, match=r"Package 0{12}… is not on this server; upload"):
        client.register_version("m", package_digest="0" * 64, flavor="sklearn", signature={})
    client.close()


_CLIENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelpilot.client import HttpArtifactStore

    def hwm_kib():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    url, token, source, target = sys.argv[1:]
    blobs = HttpArtifactStore(url, token=token, timeout_s=120)
    blobs.exists("0" * 64)  # imports and the connection pool are warm before measuring
    before = hwm_kib()
    digest = blobs.put_file(Path(source))
    blobs.fetch_to(digest, Path(target))
    print(digest, before, hwm_kib())
    """
)


def _server_hwm_kib(server: RunningServer) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


@pytest.mark.slow
def test_a_200_mb_file_streams_both_ways_in_bounded_memory(tmp_path: Path) -> None:
    home = tmp_path / "server"
    running = start_server(home, f"sqlite:///{tmp_path / 'mp.db'}")
    try:
        token = make_token(running.store_uri, "big", Role.EDITOR)
        source = tmp_path / "big.bin"
        hasher = hashlib.sha256()
        with source.open("wb") as out:
            for _ in range(200):
                chunk = os.urandom(MiB)
                hasher.update(chunk)
                out.write(chunk)
        server_before = _server_hwm_kib(running)
        out = subprocess.run(
            [sys.executable, "-c", _CLIENT, running.url, token, str(source), str(tmp_path / "c")],
            capture_output=True,
            text=True,
            check=True,
        )
        server_growth_mib = (_server_hwm_kib(running) - server_before) / 1024
        digest, client_before, client_after = out.stdout.split()
        client_growth_mib = (int(client_after) - int(client_before)) / 1024
        growth = f"server {server_growth_mib:.1f}, client {client_growth_mib:.1f}"
        print(f"peak RSS growth (MiB): {growth}")
        assert digest == hasher.hexdigest() == sha256_file(tmp_path / "c")
        assert (home / "artifacts" / digest[:2] / digest[2:]).stat().st_size == 200 * MiB
        assert server_growth_mib < 40, server_growth_mib
        assert client_growth_mib < 40, client_growth_mib
    finally:
        running.stop()
