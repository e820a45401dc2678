"""Resumable uploads: one blob written over several requests, verified, then adopted.

A session is one partial file in the store's staging folder (a local store's root, an S3
store's cache), ``.tmp-upload-<sha256>-<size_bytes>``: its
name says which blob it will become and how many bytes were declared, and its length is the
offset the next chunk must start at, so a restarted server finds every session where it was.
It is never visible as a blob (blobs live at ``ab/cdef…``), and being a ``.tmp-`` file,
:func:`~modelpilot.artifacts.local.remove_stale_temp_files` takes it once nobody has appended
to it for a day. Each chunk is appended under an exclusive ``flock``, unbuffered, so what a
chunk's request delivered before it broke off is in the file. :meth:`ResumableUploads.complete`
checks the length, hashes the file (continuing the hash kept in memory while chunks arrived in
order, or re-reading the file after a restart), fsyncs it and renames it into place; a digest
that does not match discards the partial file.

>>> import tempfile, pathlib, hashlib
>>> from modelpilot.artifacts import LocalArtifactStore
>>> store = LocalArtifactStore(pathlib.Path(tempfile.mkdtemp()))
>>> uploads = ResumableUploads(store)
>>> data = b"hello world"
>>> digest = hashlib.sha256(data).hexdigest()
>>> uploads.begin(digest, len(data)).offset
0
>>> for start in (0, 5):
...     writer = uploads.open_chunk(digest, start)
...     writer.write(data[start : start + 5] if start == 0 else data[start:])
...     writer.close().offset
5
11
>>> uploads.complete(digest).is_stored, store.get_bytes(digest)
(True, b'hello world')
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modelpilot.artifacts.base import CHUNK_BYTES, StagedArtifactStore, check_digest
from modelpilot.artifacts.local import remove_stale_temp_files
from modelpilot.errors import Conflict, InvalidInput, PayloadTooLarge

_PREFIX = ".tmp-upload-"
STALE_AFTER_S = 86_400.0  # as for every temp file: far longer than any pause between chunks


@dataclass(frozen=True)
class UploadState:
    """Where an upload stands: ``offset`` bytes of ``size_bytes`` received; ``is_stored``
    once the blob is in place (then ``offset == size_bytes``)."""

    digest: str
    size_bytes: int
    offset: int
    is_stored: bool

    def to_dict(self) -> dict[str, object]:
        """The REST body."""
        return {
            "digest": self.digest,
            "size_bytes": self.size_bytes,
            "offset": self.offset,
            "stored": self.is_stored,
        }


class ChunkWriter:
    """Appends one chunk to a session's partial file, holding its lock until :meth:`close`."""

    def __init__(
        self,
        uploads: ResumableUploads,
        digest: str,
        size_bytes: int,
        handle: IO[bytes],
        offset: int,
        hasher: hashlib._Hash | None,
    ) -> None:
        self.uploads = uploads
        self.digest = digest
        self.size_bytes = size_bytes
        self.offset = offset
        self._handle = handle
        self._hasher = hasher

    def write(self, data: bytes) -> None:
        """Append ``data``; refused (413, nothing of it written) past the declared size."""
        if self.offset + len(data) > self.size_bytes:
            raise PayloadTooLarge(
                f"Chunk for upload {self.digest[:12]}… runs past its declared size: "
                f"{self.offset + len(data):,} bytes or more, declared {self.size_bytes:,}. "
                f"The {self.offset:,} bytes before it are kept; send the rest of the file only.",
                field="body",
            )
        view = memoryview(data)
        while view:  # unbuffered: what write() took is in the file, even if we are killed
            view = view[self._handle.write(view) :]
        if self._hasher is not None:
            self._hasher.update(data)
        self.offset += len(data)

    def close(self) -> UploadState:
        """Release the lock and return the state (what arrived is kept, also after a
        disconnect). Calling it again returns the same state.

        No fsync per chunk: a killed process leaves the written bytes in the page cache, and
        a power cut that loses some is caught by the sha256 at completion (which fsyncs before
        the rename). Syncing each of 64 chunks took a 2 GiB upload from 15 s to 21 s here
        (benchmarks/upload.py)."""
        if not self._handle.closed:
            try:
                held = os.fstat(self._handle.fileno()).st_size
                if held != self.offset:  # a failed write (disk full): re-hash at completion
                    self._hasher, self.offset = None, held
                self.uploads._remember(self.digest, self.offset, self._hasher)
            finally:
                self._handle.close()  # closing releases the flock
        return UploadState(self.digest, self.size_bytes, self.offset, False)


class ResumableUploads:
    """The upload sessions of one local blob store (see the module docstring)."""

    def __init__(self, store: StagedArtifactStore, *, stale_after_s: float = STALE_AFTER_S) -> None:
        self.store = store
        self.stale_after_s = stale_after_s
        self._hashes: dict[str, tuple[int, hashlib._Hash]] = {}
        self._lock = threading.Lock()

    def begin(self, digest: str, size_bytes: int) -> UploadState:
        """Start a session for a blob of ``size_bytes``, or find the one in progress (or the
        stored blob). A session that declared another size is a 409: sizes are fixed by the
        digest, so one of the two clients is wrong."""
        check_digest(digest)
        stored = self._stored(digest)
        if stored is not None:
            return stored
        remove_stale_temp_files(self.store.staging_root, self.stale_after_s)
        self._forget_missing()
        found = self._partial(digest)
        if found is None:
            self.store.staging_root.mkdir(parents=True, exist_ok=True)
            path = self.store.staging_root / f"{_PREFIX}{digest}-{size_bytes}"
            path.touch()
            return UploadState(digest, size_bytes, 0, False)
        path, declared = found
        if declared != size_bytes:
            raise Conflict(
                f"An upload of {digest[:12]}… declaring {declared:,} bytes is in progress; this "
                f"request declares {size_bytes:,}. Files with the same sha256 have the same "
                "size: check the size, or discard the other upload first.",
                field="size_bytes",
            )
        return UploadState(digest, declared, _length(path), False)

    def state(self, digest: str) -> UploadState | None:
        """The session's state, the stored blob's, or None when there is neither."""
        check_digest(digest)
        found = self._partial(digest)
        if found is not None:
            path, declared = found
            return UploadState(digest, declared, _length(path), False)
        return self._stored(digest)

    def open_chunk(self, digest: str, offset: int) -> ChunkWriter | None:
        """A writer for the chunk starting at ``offset`` (None when there is no session).
        The offset must be the bytes held so far (409 naming them otherwise), and only one
        chunk is written at a time (409 while another is)."""
        locked = self._lock_partial(digest, os.O_WRONLY | os.O_APPEND, "ab")
        if locked is None:
            return None
        handle, _, declared = locked
        held = os.fstat(handle.fileno()).st_size
        if offset != held:
            handle.close()
            raise Conflict(
                f"Chunk for upload {digest[:12]}… starts at offset {offset:,}, but the server "
                f"holds {held:,} of its {declared:,} bytes: send the next chunk from offset "
                f"{held:,}.",
                field="offset",
            )
        return ChunkWriter(self, digest, declared, handle, held, self._take_hasher(digest, held))

    def complete(self, digest: str) -> UploadState | None:
        """Verify the whole partial file and rename it into the blob folder; None when there
        is neither a session nor the blob. 409 while bytes are missing; 422 (and the partial
        file discarded) when its sha256 is not ``digest``."""
        check_digest(digest)
        locked = self._lock_partial(digest, os.O_RDONLY, "rb")
        if locked is None:
            return self._stored(digest)
        handle, path, declared = locked
        with handle:
            held = os.fstat(handle.fileno()).st_size
            if held != declared:
                raise Conflict(
                    f"Upload {digest[:12]}… is not complete: the server holds {held:,} of "
                    f"{declared:,} bytes. Send the rest from offset {held:,}, then complete it.",
                    field="offset",
                )
            hasher = self._take_hasher(digest, held) or _hash_file(handle)
            if hasher.hexdigest() != digest:
                path.unlink(missing_ok=True)
                raise InvalidInput(
                    f"Upload {digest[:12]}…: the {held:,} bytes received hash to "
                    f"{hasher.hexdigest()[:12]}…, not the digest in the URL. They were "
                    "discarded; upload the file again from offset 0 (it may have changed while "
                    "it was being sent).",
                    field="sha256",
                )
            os.fsync(handle.fileno())  # the blob is durable before it has a name
            self.store.adopt(path, digest)
        return UploadState(digest, declared, declared, True)

    def discard(self, digest: str) -> bool:
        """Delete the session's partial file; False when there was none."""
        check_digest(digest)
        locked = self._lock_partial(digest, os.O_RDONLY, "rb")
        if locked is None:
            return False
        handle, path, _ = locked
        with handle:
            path.unlink(missing_ok=True)
            self._take_hasher(digest, -1)
        return True

    def _partial(self, digest: str) -> tuple[Path, int] | None:
        for path in self.store.staging_root.glob(f"{_PREFIX}{digest}-*"):
            declared = path.name.rsplit("-", 1)[1]
            if declared.isdigit():
                return path, int(declared)
        return None

    def _lock_partial(
        self, digest: str, flags: int, mode: str
    ) -> tuple[IO[bytes], Path, int] | None:
        """Open and exclusively lock the session's file; None when there is none (or it was
        completed or discarded while we waited for it)."""
        check_digest(digest)
        found = self._partial(digest)
        if found is None:
            return None
        path, declared = found
        try:
            fd = os.open(path, flags)  # never O_CREAT: a finished session stays finished
        except FileNotFoundError:
            return None
        handle = os.fdopen(fd, mode, buffering=0)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise Conflict(
                f"Another request is writing to upload {digest[:12]}… right now. Retry when it "
                "ends, from the offset the server then reports.",
                field="sha256",
            ) from None
        if os.fstat(fd).st_nlink == 0:  # renamed into place or discarded meanwhile
            handle.close()
            return None
        return handle, path, declared

    def _stored(self, digest: str) -> UploadState | None:
        size = self.store.size_of(digest)
        if size is None:
            return None
        return UploadState(digest, size, size, True)

    def _take_hasher(self, digest: str, offset: int) -> hashlib._Hash | None:
        """The running hash of the first ``offset`` bytes, if this process kept one."""
        with self._lock:
            kept = self._hashes.pop(digest, None)
        if offset == 0:
            return hashlib.sha256()
        return kept[1] if kept is not None and kept[0] == offset else None

    def _remember(self, digest: str, offset: int, hasher: hashlib._Hash | None) -> None:
        if hasher is not None:
            with self._lock:
                self._hashes[digest] = (offset, hasher)

    def _forget_missing(self) -> None:
        """Drop running hashes of sessions whose files went (cleaned as stale)."""
        with self._lock:
            digests = list(self._hashes)
        for digest in digests:
            if self._partial(digest) is None:
                with self._lock:
                    self._hashes.pop(digest, None)


def _length(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # completed between the lookup and now
        return 0


def _hash_file(handle: IO[bytes]) -> hashlib._Hash:
    hasher = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(CHUNK_BYTES):
        hasher.update(chunk)
    return hasher


__all__ = ["ChunkWriter", "ResumableUploads", "UploadState"]
