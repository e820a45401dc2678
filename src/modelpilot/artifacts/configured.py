"""The artifact store the settings ask for: the local folder, or an S3-compatible bucket."""

from __future__ import annotations

from modelpilot.artifacts.base import StagedArtifactStore
from modelpilot.artifacts.cache import BlobCache
from modelpilot.artifacts.local import LocalArtifactStore
from modelpilot.artifacts.s3 import S3ArtifactStore, S3Location
from modelpilot.config import Settings


def open_artifact_store(settings: Settings) -> StagedArtifactStore:
    """``MODELPILOT_ARTIFACTS_URI=s3://bucket/prefix`` selects S3 (with its local cache);
    unset, blobs live in ``artifact_root``. Nothing is contacted until the first call.

    >>> open_artifact_store(Settings(home="/tmp/mp-doc")).root.name
    'artifacts'
    >>> open_artifact_store(Settings(home="/tmp/mp-doc", artifacts_uri="s3://b/p")).location
    S3Location(bucket='b', prefix='p')
    """
    if not settings.artifacts_uri:
        return LocalArtifactStore(settings.resolved_artifact_root())
    return S3ArtifactStore(
        S3Location.parse(settings.artifacts_uri),
        cache=BlobCache(
            settings.resolved_artifact_cache_dir(), max_bytes=settings.artifact_cache_max_bytes
        ),
        max_attempts=settings.s3_max_attempts,
    )
