"""Blobs in a local folder: ``root/ab/cdef…`` named by their sha256.

Writes go to a temporary file in the same folder, are fsynced, then renamed into place and
the folder fsynced, so a crash leaves either the whole blob or nothing under its name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from modelpilot.artifacts.base import CHUNK_BYTES, BlobInfo, check_digest, digest_of_name
from modelpilot.errors import CorruptArtifact, NotFound


class LocalArtifactStore:
    """Content-addressed blob folder.

    >>> import tempfile, pathlib
    >>> store = LocalArtifactStore(pathlib.Path(tempfile.mkdtemp()))
    >>> digest = store.put_bytes(b"hello")
    >>> store.get_bytes(digest)
    b'hello'
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives (whether or not it exists)."""
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        """True when the blob is stored."""
        return self.path_for(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its digest."""
        return self._put_chunks([data])

    def put_file(self, path: Path) -> str:
        """Stream a file into the store and return its digest."""
        return self._put_chunks(read_chunks(path))

    def get_bytes(self, digest: str) -> bytes:
        """Read and verify a blob."""
        path = self._existing(digest)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptArtifact(_corrupt_message(digest, path))
        return data

    def fetch_to(self, digest: str, destination: Path) -> Path:
        """Copy a blob to ``destination``, verifying its hash on the way."""
        return copy_verified(self._existing(digest), digest, destination, _corrupt_message)

    @property
    def staging_root(self) -> Path:
        """Where uploads are written before :meth:`adopt` renames them: the root itself."""
        return self.root

    def size_of(self, digest: str) -> int | None:
        """The blob's size, or None when it is not stored."""
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            return None

    def local_path(self, digest: str) -> Path:
        """The stored blob's file (NotFound when absent); for serving it as it is."""
        return self._existing(digest)

    def open_upload(self) -> tuple[int, Path]:
        """A new temp file in the root for a blob written piece by piece (a streamed upload):
        its descriptor and path. Write, fsync, then :meth:`adopt` it or unlink it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        return fd, Path(name)

    def adopt(self, tmp: Path, digest: str) -> str:
        """Rename a complete, fsynced temp file (whose sha256 the caller checked is
        ``digest``) into place; if the blob exists already the temp file just goes."""
        target = self.path_for(digest)
        if _touched(target):  # written again: young again for `modelpilot gc`'s grace
            tmp.unlink(missing_ok=True)
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return digest

    def describe(self) -> str:
        """The blob folder."""
        return str(self.root)

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob under the root (``ab/cdef…``); temp files and strays are skipped."""
        if not self.root.is_dir():
            return
        with os.scandir(self.root) as top:
            folders = sorted((e for e in top if e.is_dir(follow_symlinks=False)), key=_name)
        for folder in folders:
            try:
                with os.scandir(folder.path) as listing:
                    entries = list(listing)
            except FileNotFoundError:  # emptied and removed meanwhile
                continue
            for entry in entries:
                digest = digest_of_name(folder.name, entry.name)
                if digest is None or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted meanwhile
                    continue
                yield BlobInfo(digest, stat.st_size, stat.st_mtime)

    def blob_info(self, digest: str) -> BlobInfo | None:
        """The blob's size and modification time now, or None when it is not stored."""
        try:
            stat = self.path_for(digest).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(digest, stat.st_size, stat.st_mtime)

    def delete_blobs(self, digests: Sequence[str]) -> None:
        """Unlink these blobs (missing ones are fine)."""
        for digest in digests:
            self.path_for(digest).unlink(missing_ok=True)

    def _put_chunks(self, chunks: Iterable[bytes]) -> str:
        tmp, digest = write_temp(self.root, chunks, fsync=True)
        return self.adopt(tmp, digest)

    def _existing(self, digest: str) -> Path:
        path = self.path_for(digest)
        if not path.is_file():
            raise NotFound(f"No artifact with digest {digest[:12]}… in {self.root}.")
        return path


def remove_stale_temp_files(
    folder: Path, max_age_s: float = 86_400.0, *, recursive: bool = False
) -> int:
    """Delete temp files (``.tmp-*``) in ``folder`` older than ``max_age_s``; return how many.

    A process killed while writing a blob leaves its temp file behind (the rename never
    happened). A day is far longer than any write, so a live writer's file is never taken.
    Blob stores write temp files at their root only, so only caches need ``recursive``.
    """
    if not folder.is_dir():
        return 0
    cutoff = time.time() - max_age_s
    removed = 0
    for path in folder.rglob(".tmp-*") if recursive else folder.glob(".tmp-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process cleaned it first
            continue
    return removed


def read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def copy_verified(
    source: Path, digest: str, destination: Path, corrupt: Callable[[str, Path], str]
) -> Path:
    """Copy ``source`` to ``destination`` atomically, checking on the way that its sha256 is
    ``digest`` (CorruptArtifact with ``corrupt(digest, source)`` otherwise)."""
    tmp, actual = write_temp(destination.parent, read_chunks(source), fsync=False)
    if actual != digest:
        tmp.unlink(missing_ok=True)
        raise CorruptArtifact(corrupt(digest, source))
    os.replace(tmp, destination)
    return destination


def copy_atomic(source: Path, destination: Path) -> Path:
    """Copy ``source`` (already verified by the caller) to ``destination`` atomically, with
    the kernel's file copy and no second hash: on a cache miss of a 500 MiB model the extra
    hash cost about a fifth of the download's throughput (benchmarks/s3.py)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=destination.parent, prefix=".tmp-")
    os.close(fd)
    try:
        shutil.copyfile(source, name)
        os.replace(name, destination)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return destination


def write_temp(folder: Path, chunks: Iterable[bytes], *, fsync: bool) -> tuple[Path, str]:
    """Write ``chunks`` to a new temp file in ``folder``; return its path and sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), hasher.hexdigest()


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _touched(path: Path) -> bool:
    """Set an existing file's mtime to now; False when there is no such file (then the caller
    renames its temp file into place, also when ``modelpilot gc`` deleted it just now)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return path.is_file()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _corrupt_message(digest: str, path: Path) -> str:
    return (
        f"Artifact {digest[:12]}… at {path} is corrupted: its bytes no longer match their "
        "sha256. Restore it from a backup or re-log the object that produced it."
    )
