"""The run-artifact seam: store a file's bytes by digest and record it under a run.

Blobs move through an :class:`~modelpilot.artifacts.ArtifactStore` (put/get/exists by sha256;
``modelpilot.client.HttpArtifactStore`` streams them to and from ``modelpilot server``);
:class:`ArtifactService` adds the one record the SDK's ``log_artifact`` needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from modelpilot.artifacts import ArtifactStore
from modelpilot.store import Store
from modelpilot.tracking import service


@runtime_checkable
class ArtifactService(Protocol):
    """Blobs by digest, plus run artifacts (``path`` of a run -> a blob)."""

    @property
    def blobs(self) -> ArtifactStore:
        """Where the bytes go (put/get/exists by sha256 digest)."""

    def log_file(self, run_id: str, file: Path, path: str) -> str:
        """Store ``file``'s bytes and record them as artifact ``path`` of the run; return the
        digest."""


class LocalArtifacts:
    """Run artifacts on a store and an artifact store in this process."""

    def __init__(self, store: Store, blobs: ArtifactStore) -> None:
        self.store = store
        self._blobs = blobs

    @property
    def blobs(self) -> ArtifactStore:
        """The artifact store."""
        return self._blobs

    def log_file(self, run_id: str, file: Path, path: str) -> str:
        """Store the file and record it under the run."""
        digest = self._blobs.put_file(file)
        service.record_artifact(self.store, run_id, path, digest, file.stat().st_size)
        return digest


__all__ = ["ArtifactService", "LocalArtifacts"]
