"""Content-addressed blobs: the bytes behind datasets, model packages and run artifacts.

Owns storing and verifying bytes by their sha256 digest: a local folder by default, or an
S3-compatible bucket read through a bounded local cache (``MODELPILOT_ARTIFACTS_URI``); both
implement the :class:`ArtifactStore` protocol. Never knows what a blob means.
"""

from __future__ import annotations

from modelpilot.artifacts.base import (
    ArtifactStore,
    BlobInfo,
    CollectableArtifactStore,
    StagedArtifactStore,
    sha256_bytes,
    sha256_file,
)
from modelpilot.artifacts.cache import BlobCache
from modelpilot.artifacts.configured import open_artifact_store
from modelpilot.artifacts.local import LocalArtifactStore, remove_stale_temp_files
from modelpilot.artifacts.memory import MemoryArtifactStore
from modelpilot.artifacts.s3 import S3ArtifactStore, S3Location
from modelpilot.artifacts.upload import ResumableUploads, UploadState

__all__ = [
    "ArtifactStore",
    "BlobCache",
    "BlobInfo",
    "CollectableArtifactStore",
    "LocalArtifactStore",
    "MemoryArtifactStore",
    "ResumableUploads",
    "S3ArtifactStore",
    "S3Location",
    "StagedArtifactStore",
    "UploadState",
    "open_artifact_store",
    "remove_stale_temp_files",
    "sha256_bytes",
    "sha256_file",
]
