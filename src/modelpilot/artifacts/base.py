"""The artifact-store protocol and hashing helpers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from modelpilot.errors import InvalidInput, shown

CHUNK_BYTES = 1 << 20
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")  # fullmatch: '$' accepts a trailing newline


@runtime_checkable
class ArtifactStore(Protocol):
    """Where blobs live. Writes are atomic and idempotent; reads verify the hash."""

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex digest (storing it again is a no-op)."""
        ...

    def put_file(self, path: Path) -> str:
        """Store a file's bytes by streaming them; return the digest."""
        ...

    def get_bytes(self, digest: str) -> bytes:
        """Return the verified bytes, or raise NotFound / CorruptArtifact."""
        ...

    def fetch_to(self, digest: str, destination: Path) -> Path:
        """Write the verified bytes to ``destination`` (atomically) and return it."""
        ...

    def exists(self, digest: str) -> bool:
        """True when a blob with this digest is stored."""
        ...


@runtime_checkable
class StagedArtifactStore(ArtifactStore, Protocol):
    """A store ``modelpilot server`` takes uploads into and serves downloads from: bytes
    arrive in a temp file under ``staging_root``, are hashed, then :meth:`adopt` ed; a
    download streams a verified local file."""

    @property
    def staging_root(self) -> Path:
        """The folder of temp files and resumable-upload sessions."""
        ...

    def open_upload(self) -> tuple[int, Path]:
        """A new temp file under ``staging_root``: its descriptor and path."""
        ...

    def adopt(self, tmp: Path, digest: str) -> str:
        """Store a complete temp file whose sha256 the caller checked is ``digest``."""
        ...

    def size_of(self, digest: str) -> int | None:
        """The stored blob's size, or None when it is not stored."""
        ...

    def local_path(self, digest: str) -> Path:
        """A verified local file with the blob's bytes, or raise NotFound."""
        ...


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob as a listing sees it: ``modified_s`` is when it was last written (or
    re-written by a put of the same bytes), in epoch seconds."""

    digest: str
    size_bytes: int
    modified_s: float


@runtime_checkable
class CollectableArtifactStore(ArtifactStore, Protocol):
    """A store ``modelpilot gc`` can list and delete blobs in (local folder, memory, S3).

    A put of bytes already stored refreshes the blob's ``modified_s``: the garbage collector
    keeps blobs younger than its grace period, and a writer about to reference an old,
    unreferenced blob has just put it (modelpilot.artifact_gc explains why).
    """

    def describe(self) -> str:
        """Where the blobs live, for messages (a folder, ``s3://bucket/prefix``)."""
        ...

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob, in pages where the backend pages (temp files are not blobs)."""
        ...

    def blob_info(self, digest: str) -> BlobInfo | None:
        """One blob's size and age now, or None when it is not stored."""
        ...

    def delete_blobs(self, digests: Sequence[str]) -> None:
        """Delete these blobs (missing ones are fine: deleting is idempotent)."""
        ...


def digest_of_name(folder: str, name: str) -> str | None:
    """The digest stored as ``folder/name`` (``ab`` / ``cdef…``), or None for anything else.

    >>> digest_of_name("ab", "c" * 62)[:4], digest_of_name("ab", ".tmp-x")
    ('abcc', None)
    """
    digest = folder + name
    return digest if _DIGEST_RE.fullmatch(digest) and len(folder) == 2 else None


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``.

    >>> sha256_bytes(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(digest: str) -> str:
    """Reject anything that is not a lowercase sha256 hex string (it becomes a path).

    >>> check_digest("../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Artifact digest '../etc/passwd' is not a sha256 hex digest ...
    """
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidInput(
            f"Artifact digest {shown(digest)} is not a sha256 hex digest "
            "(64 lowercase hex characters).",
            field="digest",
        )
    return digest
