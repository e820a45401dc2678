"""Resumable uploads through a real ``modelpilot server`` process and the real client.

Files above two chunks go in chunks (1 MiB here, so a 5 MiB file is five requests). A TCP
proxy between client and server cuts the connection, or holds it while the server is killed
and restarted, after a set number of bytes: the client then continues from the offset the
server reports, not from byte 0, and the stored blob's sha256 is right. Wrong offsets, sizes
and digests get JSON errors naming the field, and an upload that never completes leaves no
blob and nothing that can be registered.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from modelpilot.artifacts import sha256_file
from modelpilot.client import HttpArtifactStore, HttpRegistry
from modelpilot.config import Settings
from modelpilot.errors import InvalidInput, NotFound
from modelpilot.server.auth import Role
from modelpilot.workspace import Workspace
from mp_server import RunningServer, make_token, start_server

MiB = 1 << 20
FILE_BYTES = 5 * MiB + 12_345  # five whole 1 MiB chunks and a short last one


class CuttingProxy:
    """Forwards connections to ``127.0.0.1:upstream_port`` and counts the bytes clients send.

    Armed with :meth:`cut_after`, it forwards that many more client bytes, then either closes
    both sides at once or (``hold=True``) stops forwarding, sets :attr:`held` and waits for
    :attr:`release` before closing them. It fires once; later connections pass untouched."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_bytes = 0
        self.held = threading.Event()
        self.release = threading.Event()
        self._budget: int | None = None
        self._hold = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def cut_after(self, n_bytes: int, *, hold: bool = False) -> None:
        with self._lock:
            self._budget, self._hold = n_bytes, hold

    def close(self) -> None:
        self.release.set()
        _close(self.listener)  # shutdown() wakes the accept() that close() alone leaves blocked
        with self._lock:
            for sock in self._sockets:
                _close(sock)
        for thread in self._threads:
            thread.join(timeout=10)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # listener closed
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:  # the server is down: the client sees a dropped connection
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, target, counted in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(source, target, counted), daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(65536):
                if counted and self._forward_counted(data, target):
                    break
                if not counted:
                    target.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(target)

    def _forward_counted(self, data: bytes, target: socket.socket) -> bool:
        """Forward client bytes; True once the armed cut fired (the caller then closes)."""
        with self._lock:
            budget, hold = self._budget, self._hold
            if budget is not None and len(data) >= budget:
                self._budget = None
            elif budget is not None:
                self._budget = budget - len(data)
        if budget is None or len(data) < budget:
            self.client_bytes += len(data)
            target.sendall(data)
            return False
        self.client_bytes += budget
        target.sendall(data[:budget])
        if hold:
            self.held.set()
            self.release.wait(timeout=60)
        return True


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, recording each request's method, path and ``offset`` parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, int | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        offset = request.url.params.get("offset")
        self.requests.append(
            (request.method, request.url.path, int(offset) if offset is not None else None)
        )
        return super().handle_request(request)

    def chunk_offsets(self) -> list[int]:
        return [o for method, _, o in self.requests if method == "PUT" and o is not None]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("uploads-server")
    running = start_server(
        home, f"sqlite:///{home / 'mp.db'}", env={"MODELPILOT_MAX_UPLOAD_BYTES": str(64 * MiB)}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token(server: RunningServer) -> str:
    return make_token(server.store_uri, "uploads", Role.EDITOR)


@pytest.fixture
def proxy(server: RunningServer) -> Iterator[CuttingProxy]:
    running = CuttingProxy(server.port)
    yield running
    running.close()


def _random_file(path: Path, size: int = FILE_BYTES) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _blob(server: RunningServer, digest: str) -> Path:
    return server.home / "artifacts" / digest[:2] / digest[2:]


def _partials(server: RunningServer, digest: str) -> list[Path]:
    return list((server.home / "artifacts").glob(f".tmp-upload-{digest}-*"))


def _wait_for(condition: Callable[[], bool], deadline_s: float = 30) -> None:
    """Poll a condition on another process, bounded by a deadline."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)  # watching a separate process; bounded by the deadline


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_file_sent_in_chunks_reads_back_identical(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    source = _random_file(tmp_path / "weights.bin")
    transport = RecordingTransport()
    blobs = HttpArtifactStore(server.url, token=token, chunk_bytes=MiB, transport=transport)
    try:
        digest = blobs.put_file(source)
        assert transport.chunk_offsets() == [i * MiB for i in range(6)]
        assert [m for m, *_ in transport.requests] == ["HEAD", "POST"] + ["PUT"] * 6 + ["POST"]
        blobs.fetch_to(digest, tmp_path / "copy.bin")
    finally:
        blobs.close()
    assert digest == sha256_file(source) == sha256_file(tmp_path / "copy.bin")
    assert _blob(server, digest).stat().st_size == FILE_BYTES
    assert _partials(server, digest) == []


def test_small_files_keep_the_single_put(server: RunningServer, token: str, tmp_path: Path) -> None:
    source = _random_file(tmp_path / "small.bin", 2 * MiB)  # not above two chunks
    transport = RecordingTransport()
    blobs = HttpArtifactStore(server.url, token=token, chunk_bytes=MiB, transport=transport)
    try:
        digest = blobs.put_file(source)
    finally:
        blobs.close()
    assert [(m, p.split("/")[3]) for m, p, _ in transport.requests] == [
        ("HEAD", "artifacts"),
        ("PUT", "artifacts"),
    ]
    assert _blob(server, digest).is_file()


def test_a_cut_connection_resumes_from_the_servers_offset(
    server: RunningServer, token: str, proxy: CuttingProxy, tmp_path: Path
) -> None:
    source = _random_file(tmp_path / "cut.bin")
    proxy.cut_after(2 * MiB + MiB // 2)  # half-way through the third chunk
    transport = RecordingTransport()
    blobs = HttpArtifactStore(proxy.url, token=token, chunk_bytes=MiB, transport=transport)
    try:
        digest = blobs.put_file(source)
    finally:
        blobs.close()
    offsets = transport.chunk_offsets()
    assert offsets[:3] == [0, MiB, 2 * MiB]
    resumed = offsets[3]  # what the server said it held after the cut
    assert 2 * MiB <= resumed < 3 * MiB, offsets
    assert offsets[4:] == sorted(offsets[4:]) and 0 not in offsets[1:], offsets
    assert proxy.client_bytes < 2 * FILE_BYTES
    assert digest == sha256_file(source)
    assert hashlib.sha256(_blob(server, digest).read_bytes()).hexdigest() == digest
    assert _partials(server, digest) == []


def test_an_upload_resumes_across_a_server_killed_and_restarted(
    tmp_path: Path,
) -> None:
    home, uri = tmp_path / "server", f"sqlite:///{tmp_path / 'mp.db'}"
    first = start_server(home, uri)
    token = make_token(uri, "restart", Role.EDITOR)
    proxy = CuttingProxy(first.port)
    source = _random_file(tmp_path / "restart.bin")
    transport = RecordingTransport()
    blobs = HttpArtifactStore(proxy.url, token=token, chunk_bytes=MiB, transport=transport)
    outcome: dict[str, object] = {}

    def upload() -> None:
        try:
            outcome["digest"] = blobs.put_file(source)
        except Exception as exc:
            outcome["error"] = exc

    uploader = threading.Thread(target=upload)
    second: RunningServer | None = None
    try:
        proxy.cut_after(3 * MiB + MiB // 4, hold=True)
        uploader.start()
        assert proxy.held.wait(timeout=30)
        first.stop(signal.SIGKILL)  # mid-chunk, nothing flushed on the way out
        held_on_disk = _partials(first, sha256_file(source))[0].stat().st_size
        second = start_server(home, uri, port=first.port)
        proxy.release.set()
        uploader.join(timeout=60)
        assert not uploader.is_alive()
    finally:
        blobs.close()
        proxy.close()
        if second is not None:
            second.stop()
    assert "error" not in outcome, outcome
    digest = sha256_file(source)
    assert outcome["digest"] == digest
    offsets = transport.chunk_offsets()
    assert offsets[:4] == [0, MiB, 2 * MiB, 3 * MiB], offsets
    assert offsets[4] == held_on_disk >= 3 * MiB, (offsets, held_on_disk)
    assert proxy.client_bytes < 2 * FILE_BYTES
    assert hashlib.sha256(_blob(second, digest).read_bytes()).hexdigest() == digest
    assert _partials(second, digest) == []


def test_a_wrong_offset_is_409_naming_the_offset_to_send(server: RunningServer, token: str) -> None:
    digest = hashlib.sha256(b"x" * 100).hexdigest()
    with httpx.Client(base_url=f"{server.url}/api/v1/uploads", headers=_auth(token)) as http:
        assert http.post(f"/{digest}", json={"size_bytes": 100}).status_code == 201
        assert http.put(f"/{digest}", params={"offset": 0}, content=b"x" * 40).json() == {
            "digest": digest,
            "size_bytes": 100,
            "offset": 40,
            "stored": False,
        }
        reply = http.put(f"/{digest}", params={"offset": 0}, content=b"x" * 60)
        assert reply.status_code == 409
        error = reply.json()["error"]
        assert error["field"] == "offset"
        assert (
            "starts at offset 0, but the server holds 40 of its 100 bytes: send the next "
            "chunk from offset 40" in error["message"]
        )
        reply = http.post(f"/{digest}/complete")
        assert reply.status_code == 409
        assert (
            "holds 40 of 100 bytes. Send the rest from offset 40"
            in reply.json()["error"]["message"]
        )
        reply = http.put(f"/{digest}", params={"offset": 40}, content=b"x" * 61)
        assert reply.status_code == 413
        assert reply.json()["error"]["field"] == "body"
        assert "runs past its declared size" in reply.json()["error"]["message"]
        reply = http.put(f"/{digest}", params={"offset": -1}, content=b"x")
        assert (reply.status_code, reply.json()["error"]["field"]) == (422, "offset")
        assert http.put(f"/{digest}", params={"offset": 40}, content=b"x" * 60).is_success
        assert http.post(f"/{digest}/complete").status_code == 201
        assert http.post(f"/{digest}/complete").json()["stored"] is True  # repeatable
        assert http.post(f"/{digest}", json={"size_bytes": 100}).json()["stored"] is True


def test_a_digest_mismatch_at_completion_is_422_and_discards_the_data(
    server: RunningServer, token: str
) -> None:
    digest = hashlib.sha256(b"what the client said").hexdigest()
    with httpx.Client(base_url=f"{server.url}/api/v1/uploads", headers=_auth(token)) as http:
        http.post(f"/{digest}", json={"size_bytes": 14}).raise_for_status()
        http.put(f"/{digest}", params={"offset": 0}, content=b"something else").raise_for_status()
        reply = http.post(f"/{digest}/complete")
        assert reply.status_code == 422
        error = reply.json()["error"]
        assert error["field"] == "sha256"
        assert "hash to" in error["message"] and "They were discarded" in error["message"]
        reply = http.get(f"/{digest}")
        assert reply.status_code == 404
        assert "No upload of" in reply.json()["error"]["message"]
    assert _partials(server, digest) == []
    assert not _blob(server, digest).exists()


def test_sizes_over_the_limit_and_conflicting_sizes_are_refused(
    server: RunningServer, token: str
) -> None:
    digest = "cd" * 32
    with httpx.Client(base_url=f"{server.url}/api/v1/uploads", headers=_auth(token)) as http:
        reply = http.post(f"/{digest}", json={"size_bytes": 64 * MiB + 1})
        assert reply.status_code == 413
        assert reply.json()["error"]["field"] == "size_bytes"
        assert "the limit is 67,108,864" in reply.json()["error"]["message"]
        assert http.post(f"/{digest}", json={"size_bytes": 10}).status_code == 201
        assert http.post(f"/{digest}", json={"size_bytes": 10}).status_code == 200
        reply = http.post(f"/{digest}", json={"size_bytes": 11})
        assert (reply.status_code, reply.json()["error"]["field"]) == (409, "size_bytes")
        assert http.delete(f"/{digest}").json() == {"digest": digest, "discarded": True}
        assert http.delete(f"/{digest}").status_code == 404
        reply = http.put("/not-a-digest", params={"offset": 0}, content=b"x")
        assert (reply.status_code, reply.json()["error"]["field"]) == (422, "digest")


def test_a_chunk_cut_off_is_kept_and_a_second_writer_waits_its_turn(
    server: RunningServer, token: str
) -> None:
    content = b"\1" * (3 * MiB + 1)
    digest = hashlib.sha256(content).hexdigest()
    with httpx.Client(base_url=f"{server.url}/api/v1/uploads", headers=_auth(token)) as http:
        http.post(f"/{digest}", json={"size_bytes": len(content)}).raise_for_status()
        head = (
            f"PUT /api/v1/uploads/{digest}?offset=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(content)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(head + content[: 3 * MiB])  # all but the last byte, then hang up
            _wait_for(lambda: _partials(server, digest)[0].stat().st_size == 3 * MiB)
            reply = http.put(f"/{digest}", params={"offset": 3 * MiB}, content=b"\1")
            assert reply.status_code == 409
            assert "Another request is writing to upload" in reply.json()["error"]["message"]
        replies: list[httpx.Response] = []

        def last_byte_taken() -> bool:  # refused (409) until the server sees the hang-up
            replies.append(http.put(f"/{digest}", params={"offset": 3 * MiB}, content=b"\1"))
            return replies[-1].status_code != 409

        _wait_for(last_byte_taken)
        assert replies[-1].json()["offset"] == len(content)
        assert http.post(f"/{digest}/complete").status_code == 201
    assert _partials(server, digest) == []
    assert _blob(server, digest).read_bytes() == content


def _no_chunk_being_written(blobs: HttpArtifactStore, digest: str) -> bool:
    """A chunk at an impossible offset is refused either way; the message says whether
    another request still holds the upload (its bytes may still be arriving)."""
    reply = blobs.http.put(f"/api/v1/uploads/{digest}", params={"offset": 1 << 40}, content=b"")
    assert reply.status_code == 409, reply.text
    return "Another request is writing" not in reply.json()["error"]["message"]


_KILLED_CLIENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelpilot.client import HttpArtifactStore

    url, token, source = sys.argv[1:]
    HttpArtifactStore(url, token=token, chunk_bytes=1 << 20).put_file(Path(source))
    """
)


def test_a_client_killed_mid_upload_leaves_no_blob_and_nothing_registrable(
    server: RunningServer, token: str, proxy: CuttingProxy, tmp_path: Path
) -> None:
    source = _random_file(tmp_path / "model.bin")
    digest = sha256_file(source)
    proxy.cut_after(2 * MiB, hold=True)
    client = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CLIENT, proxy.url, token, str(source)],
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proxy.held.wait(timeout=60)
    finally:
        client.kill()
        client.wait(timeout=30)
    proxy.release.set()
    blobs = HttpArtifactStore(server.url, token=token, chunk_bytes=MiB)
    registry = HttpRegistry(server.url, token=token)
    try:
        _wait_for(lambda: _no_chunk_being_written(blobs, digest))  # the server saw the hang-up
        assert not blobs.exists(digest)
        assert not _blob(server, digest).exists()
        with pytest.raises(NotFound, match="No artifact with digest"):
            blobs.get_bytes(digest)
        with pytest.raises(InvalidInput, match="is not on this server; upload"):
            registry.register_version("half", package_digest=digest, flavor="sklearn", signature={})
        assert [m.name for m in registry.list_models()] == []
        held = blobs.call("GET", f"/api/v1/uploads/{digest}", idempotent=True)["offset"]
        transport = RecordingTransport()
        resumed = HttpArtifactStore(server.url, token=token, chunk_bytes=MiB, transport=transport)
        try:
            assert resumed.put_file(source) == digest
        finally:
            resumed.close()
        assert transport.chunk_offsets()[0] == held > 0
    finally:
        blobs.close()
        registry.close()
    assert _partials(server, digest) == []
    assert sha256_file(_blob(server, digest)) == digest


def test_the_sdk_uploads_large_artifacts_in_chunks_of_its_setting(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    source = _random_file(tmp_path / "big-artifact.bin", MiB)  # 16 chunks of 64 KiB
    settings = Settings(
        home=tmp_path / "client", server_uri=server.url, token=token, upload_chunk_bytes=1 << 16
    )
    ws = Workspace(settings)
    try:
        assert isinstance(ws.artifacts, HttpArtifactStore)
        assert ws.artifacts.chunk_bytes == 1 << 16
        with ws.start_run("chunked"):
            logged = ws.log_artifact(source)
    finally:
        ws.close()
    digest = sha256_file(source)
    assert digest in logged.values()
    assert sha256_file(_blob(server, digest)) == digest
