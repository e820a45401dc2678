"""A bounded, verified local cache of blobs fetched from a remote store (``root/ab/cdef…``).

A machine that loads a model from S3 keeps the blob here, so the next load (another replica
on the same machine, a restart) reads the disk instead of the bucket. Every use re-hashes the
file: a cached blob that no longer matches its sha256 is deleted and fetched again, never
handed out. The cache is bounded: after each addition the least recently used blobs
(oldest mtime; a use sets it) go until the total is at most ``max_bytes``. The blob just
added is never evicted by its own addition, so one blob larger than the bound stays until
the next addition; it also means one reader's blob cannot vanish before it was read once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from modelpilot.artifacts.base import check_digest, sha256_file


class BlobCache:
    """Verified blobs in a folder, evicted least-recently-used past ``max_bytes``.

    >>> import tempfile, pathlib, hashlib
    >>> cache = BlobCache(pathlib.Path(tempfile.mkdtemp()), max_bytes=10)
    >>> fd, tmp = cache.open_temp()
    >>> _ = os.write(fd, b"hello"); os.close(fd)
    >>> digest = hashlib.sha256(b"hello").hexdigest()
    >>> cache.add(tmp, digest).read_bytes(), cache.lookup(digest) is not None
    (b'hello', True)
    """

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_for(self, digest: str) -> Path:
        """Where the cached copy of ``digest`` lives (whether or not it is there)."""
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def lookup(self, digest: str) -> Path | None:
        """The cached blob after checking its sha256 (and marking it used), or None when it
        is not cached; a copy whose bytes changed is deleted and reported as absent."""
        path = self.path_for(digest)
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            return None
        if actual != digest:
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(FileNotFoundError):
            _mark_used(path)
        return path

    def open_temp(self) -> tuple[int, Path]:
        """A new temp file in the cache folder (same filesystem, so :meth:`add` renames it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        return fd, Path(name)

    def add(self, tmp: Path, digest: str) -> Path:
        """Rename ``tmp`` (whose sha256 the caller checked is ``digest``) into the cache,
        then evict past the bound; return the cached path."""
        target = self.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _mark_used(target)
        self.evict(keep=target)
        return target

    def discard(self, digest: str) -> None:
        """Forget a cached blob (a no-op when it is not cached)."""
        self.path_for(digest).unlink(missing_ok=True)

    def size_bytes(self) -> int:
        """Total bytes of the cached blobs."""
        return sum(size for _, size, _ in self._entries())

    def evict(self, keep: Path | None = None) -> int:
        """Delete least recently used blobs until the total fits ``max_bytes``; return how
        many went. ``keep`` is never deleted."""
        entries = sorted(self._entries(), key=lambda entry: entry[2])
        total = sum(size for _, size, _ in entries)
        removed = 0
        for path, size, _ in entries:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)  # another process may have evicted it first
            total -= size
            removed += 1
        return removed

    def _entries(self) -> list[tuple[Path, int, int]]:
        """(path, size, last use) of every cached blob; temp files are not entries."""
        found = []
        for path in self.root.glob("??/*"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if not path.name.startswith(".tmp-"):
                found.append((path, stat.st_size, stat.st_mtime_ns))
        return found


def _mark_used(path: Path) -> None:
    """Set the mtime to now in nanoseconds: the kernel stamps files at its clock tick (ms),
    too coarse to order uses that follow each other closely."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))
