"""Content-addressed blobs: the bytes behind datasets, model packages and run artifacts.

Owns storing and verifying bytes by their sha256 digest (local folder by default; the
:class:`ArtifactStore` protocol is what an S3-compatible backend implements). Never knows
what a blob means.
"""

from __future__ import annotations

from modelpilot.artifacts.base import ArtifactStore, sha256_bytes, sha256_file
from modelpilot.artifacts.local import LocalArtifactStore, remove_stale_temp_files
from modelpilot.artifacts.memory import MemoryArtifactStore
from modelpilot.artifacts.upload import ResumableUploads, UploadState

__all__ = [
    "ArtifactStore",
    "LocalArtifactStore",
    "MemoryArtifactStore",
    "ResumableUploads",
    "UploadState",
    "remove_stale_temp_files",
    "sha256_bytes",
    "sha256_file",
]
