"""Blobs over HTTP: :class:`HttpArtifactStore` streams them to and from ``modelpilot server``.

Uploads are ``PUT /api/v1/artifacts/{sha256}`` with the file object as the body (httpx reads
it in 64 KiB chunks), after a ``HEAD`` that skips blobs the server already has. A file larger
than two chunks (``chunk_bytes``, 32 MiB by default) goes as a resumable upload instead
(:mod:`modelpilot.client.upload`): after a dropped connection it continues from the bytes the
server holds, not from byte 0. Downloads
stream into a temporary file next to the destination while hashing, and are renamed into
place only when the hash matches, so neither side holds a whole file in memory and a
truncated or altered download never lands.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import httpx

from modelpilot.artifacts.base import check_digest, sha256_bytes, sha256_file
from modelpilot.client.transport import DROPPED, HttpService, decode_reply, error_from_reply
from modelpilot.client.upload import upload_in_chunks
from modelpilot.errors import CorruptArtifact, Forbidden, ModelpilotError, Unauthorized, Unavailable

_API = "/api/v1/artifacts"
_OCTETS = {"Content-Type": "application/octet-stream"}
# 32 MiB a chunk: a dropped connection costs at most that much again, and a 2 GB file takes 64
# requests, whose overhead (an fsync each on the server) does not show next to the bytes.
DEFAULT_CHUNK_BYTES = 32 * 2**20


class HttpArtifactStore(HttpService):
    """:class:`~modelpilot.artifacts.ArtifactStore` on ``modelpilot server``.

    Files over ``2 * chunk_bytes`` are uploaded in chunks of ``chunk_bytes``, resumably."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retry_for_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        super().__init__(
            base_url, token=token, timeout_s=timeout_s, retry_for_s=retry_for_s, transport=transport
        )
        self.chunk_bytes = chunk_bytes

    def exists(self, digest: str) -> bool:
        """True when the server holds the blob (``HEAD``; viewer)."""
        url = f"{_API}/{check_digest(digest)}"
        reply = self.send(lambda: self.http.head(url), f"HEAD {url}", idempotent=True)
        if reply.status_code in (200, 404):
            return reply.status_code == 200
        raise _head_error(reply, url)

    def put_bytes(self, data: bytes) -> str:
        """Upload ``data`` unless the server has it; return its digest."""
        digest = sha256_bytes(data)
        if not self.exists(digest):
            self._upload(digest, lambda: data)
        return digest

    def put_file(self, path: Path) -> str:
        """Stream a file to the server unless it has it already (in resumable chunks when it
        is large); return its digest."""
        digest = sha256_file(path)
        if self.exists(digest):
            return digest
        size_bytes = path.stat().st_size
        if size_bytes > 2 * self.chunk_bytes:
            upload_in_chunks(self, digest, path, size_bytes, chunk_bytes=self.chunk_bytes)
        else:
            self._upload(digest, lambda: path.open("rb"))
        return digest

    def get_bytes(self, digest: str) -> bytes:
        """A (small) blob's verified bytes: manifests, input examples, Parquet datasets."""
        url = f"{_API}/{check_digest(digest)}"
        reply = self.send(lambda: self.http.get(url), f"GET {url}", idempotent=True)
        if not reply.is_success:
            decode_reply(reply, self.base_url)
        if sha256_bytes(reply.content) != digest:
            raise CorruptArtifact(_corrupt(digest, self.base_url))
        return reply.content

    def fetch_to(self, digest: str, destination: Path) -> Path:
        """Stream a blob into ``destination``, verified, renamed into place at the end."""
        url = f"{_API}/{check_digest(digest)}"
        request = self.http.build_request("GET", url)
        reply = self.send(
            lambda: self.http.send(request, stream=True), f"GET {url}", idempotent=True
        )
        try:
            if not reply.is_success:
                reply.read()
                decode_reply(reply, self.base_url)
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=destination.parent, prefix=".tmp-")
            try:
                actual = _write_stream(reply, fd, url, self.base_url)
                if actual != digest:
                    raise CorruptArtifact(_corrupt(digest, self.base_url))
                os.replace(name, destination)
            except BaseException:
                Path(name).unlink(missing_ok=True)
                raise
        finally:
            reply.close()
        return destination

    def _upload(self, digest: str, open_body: Callable[[], bytes | BinaryIO]) -> None:
        """PUT the bytes; repeating it is harmless (content-addressed), so it is retried."""
        url = f"{_API}/{digest}"

        def request() -> httpx.Response:
            content = open_body()
            try:
                return self.http.put(url, content=content, headers=_OCTETS)
            finally:
                if not isinstance(content, bytes):
                    content.close()

        decode_reply(self.send(request, f"PUT {url}", idempotent=True), self.base_url)


class HttpArtifacts:
    """:class:`~modelpilot.tracking.artifacts.ArtifactService` on ``modelpilot server``."""

    def __init__(self, blobs: HttpArtifactStore) -> None:
        self._blobs = blobs

    @property
    def blobs(self) -> HttpArtifactStore:
        """The server's blobs."""
        return self._blobs

    def log_file(self, run_id: str, file: Path, path: str) -> str:
        """Upload the file (unless the server has it) and record it under the run."""
        digest = self._blobs.put_file(file)
        body = {"path": path, "digest": digest}
        self._blobs.call("POST", f"/api/v1/runs/{run_id}/artifacts", body, idempotent=True)
        return digest


def _write_stream(reply: httpx.Response, fd: int, url: str, base_url: str) -> str:
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in reply.iter_bytes():
                hasher.update(chunk)
                out.write(chunk)
    except DROPPED as exc:
        raise Unavailable(
            f"The download of {url} from modelpilot server at {base_url} broke off "
            f"({type(exc).__name__}); nothing was kept. Try again."
        ) from exc
    return hasher.hexdigest()


def _head_error(reply: httpx.Response, url: str) -> ModelpilotError:
    """HEAD answers carry no body, so the status alone says what went wrong."""
    if reply.status_code == 401:
        return Unauthorized(f"HEAD {url} needs a valid token (set MODELPILOT_TOKEN).")
    if reply.status_code == 403:
        return Forbidden(f"HEAD {url} needs viewer or higher; the token's role is too low.")
    return error_from_reply(reply, None, str(reply.url))


def _corrupt(digest: str, base_url: str) -> str:
    return (
        f"Artifact {digest[:12]}… downloaded from modelpilot server at {base_url} does not "
        "match its sha256; nothing was kept. Retry; if it persists, the server's copy is "
        "corrupted (restore it from a backup or re-log the object that produced it)."
    )


__all__ = ["HttpArtifactStore", "HttpArtifacts"]
