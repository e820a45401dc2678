"""An in-memory artifact store: the test double for the ArtifactStore seam."""

from __future__ import annotations

import threading
from pathlib import Path

from modelpilot.artifacts.base import check_digest, sha256_bytes
from modelpilot.errors import CorruptArtifact, NotFound


class MemoryArtifactStore:
    """Blobs in a dict, with the same contract as the local folder.

    >>> store = MemoryArtifactStore()
    >>> store.exists(store.put_bytes(b"x"))
    True
    """

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its digest."""
        digest = sha256_bytes(data)
        with self._lock:
            self.blobs.setdefault(digest, bytes(data))
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
