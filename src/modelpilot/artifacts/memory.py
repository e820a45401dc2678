"""An in-memory artifact store: the test double for the ArtifactStore seam."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from modelpilot.artifacts.base import BlobInfo, check_digest, sha256_bytes
from modelpilot.errors import CorruptArtifact, NotFound


class MemoryArtifactStore:
    """Blobs in a dict, with the same contract as the local folder.

    >>> store = MemoryArtifactStore()
    >>> store.exists(store.put_bytes(b"x"))
    True
    """

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.written_s: dict[str, float] = {}  # last put of each blob (gc's age)
        self._lock = threading.Lock()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its digest."""
        digest = sha256_bytes(data)
        with self._lock:
            self.blobs.setdefault(digest, bytes(data))
            self.written_s[digest] = time.time()
        return digest

    def put_file(self, path: Path) -> str:
        """Store a file's bytes."""
        return self.put_bytes(path.read_bytes())

    def get_bytes(self, digest: str) -> bytes:
        """Return verified bytes."""
        check_digest(digest)
        data = self.blobs.get(digest)
        if data is None:
            raise NotFound(f"No artifact with digest {digest[:12]}… in memory.")
        if sha256_bytes(data) != digest:
            raise CorruptArtifact(f"Artifact {digest[:12]}… in memory is corrupted.")
        return data

    def fetch_to(self, digest: str, destination: Path) -> Path:
        """Write the blob to ``destination``."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(self.get_bytes(digest))
        return destination

    def exists(self, digest: str) -> bool:
        """True when stored."""
        return check_digest(digest) in self.blobs

    def describe(self) -> str:
        """``memory``."""
        return "memory"

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob (a snapshot)."""
        with self._lock:
            infos = [self._info(d) for d in self.blobs]
        yield from infos

    def blob_info(self, digest: str) -> BlobInfo | None:
        """The blob's size and last put, or None."""
        with self._lock:
            return self._info(digest) if check_digest(digest) in self.blobs else None

    def delete_blobs(self, digests: Sequence[str]) -> None:
        """Forget these blobs."""
        with self._lock:
            for digest in digests:
                self.blobs.pop(digest, None)
                self.written_s.pop(digest, None)

    def _info(self, digest: str) -> BlobInfo:
        return BlobInfo(digest, len(self.blobs[digest]), self.written_s.get(digest, 0.0))
