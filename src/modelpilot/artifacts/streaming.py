"""Moving a blob's bytes with its sha256 computed on the way, not in a second pass.

The S3 store's costs beyond the transfer itself were a staged copy, a hash pass and a copy
to the destination, one after the other (``benchmarks/s3.py``: 65% of a plain upload's
throughput, 45% of a download's). These helpers fold them together:

- :func:`copy_hashed` stages a file with the kernel's copy (``copy_file_range``) while a
  second thread hashes the *copy* (not the source) right behind it, so the digest is the
  digest of the bytes that will be uploaded even if the source changes meanwhile;
- :class:`HashingWriter` is a non-seekable file object: boto3's managed download delivers
  its parallel ranged GETs to one in order (s3transfer's ``DeferQueue``, which also drops
  the bytes a retried range repeats), and a thread hashes them as they are written, so the
  hash is ready when the last byte lands;
- :func:`link_atomic` puts a verified file at a destination as a hard link (a copy across
  filesystems), renamed into place, so a destination is never half written.

hashlib releases the GIL on buffers past 2 KiB, so hashing overlaps the copy and the
network threads.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import queue
import secrets
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from modelpilot.artifacts.local import copy_atomic

STAGE_CHUNK_BYTES = 16 * 2**20
# copy_file_range fails with these where the kernel or filesystem cannot do it (another
# filesystem on an old kernel, a FUSE mount, no such syscall): fall back to read and write.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}
# os.link fails with these where a hard link is impossible: copy instead.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.EACCES}


def copy_hashed(
    source: Path, folder: Path, *, chunk_bytes: int = STAGE_CHUNK_BYTES
) -> tuple[Path, str]:
    """Copy ``source`` to a new temp file in ``folder``; return it and the sha256 of its bytes.

    Use it to stage a file whose digest names it: each ``chunk_bytes`` range is hashed from
    the copy while the next one is copied.

    >>> import pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.bin").write_bytes(b"hello")
    >>> tmp, digest = copy_hashed(folder / "a.bin", folder)
    >>> tmp.read_bytes(), digest[:12]
    (b'hello', '2cf24dba5fb0')
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    hasher = hashlib.sha256()
    try:
        with source.open("rb") as src, ThreadPoolExecutor(1) as hashing:
            hashed: list[Future[None]] = []
            offset = 0
            # One hashing thread runs the ranges in submission order, behind the copy.
            while copied := _copy_range(src.fileno(), fd, offset, chunk_bytes):
                hashed.append(hashing.submit(_hash_range, hasher, fd, offset, copied))
                offset += copied
            for done in hashed:
                done.result()
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    return Path(name), hasher.hexdigest()


class HashingWriter:
    """A write-only, non-seekable file object that writes in order and hashes in a thread of
    its own, so the hash overlaps the writes and the network (boto3's writes come from one
    I/O thread; hashing there was 60% of a plain download, in a thread 73%, same load).

    Use it as a context manager; the digest is complete once the block has left.

    >>> import io
    >>> with HashingWriter(io.BytesIO()) as writer:
    ...     writer.write(b"hel"), writer.write(b"lo"), writer.seekable()
    (3, 2, False)
    >>> writer.hexdigest()[:12], writer.size_bytes
    ('2cf24dba5fb0', 5)
    """

    def __init__(self, out: BinaryIO, *, queue_chunks: int = 32) -> None:
        self.out = out
        self.queue_chunks = queue_chunks
        self.size_bytes = 0
        self._hasher = hashlib.sha256()
        # Bounded: when the hash falls behind, writes wait instead of piling up in memory.
        self._pending: queue.Queue[bytes | None] = queue.Queue(queue_chunks)
        self._thread = threading.Thread(target=self._hash_pending, name="sha256", daemon=True)

    def __enter__(self) -> HashingWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pending.put(None)
        self._thread.join()

    def write(self, data: bytes) -> int:
        """Hand ``data`` to the hashing thread, then write the whole of it."""
        self._pending.put(data)
        self.out.write(data)
        self.size_bytes += len(data)
        return len(data)

    def seekable(self) -> bool:
        """False: writes arrive in order (boto3 holds back ranges that come early)."""
        return False

    def hexdigest(self) -> str:
        """The sha256 of everything written (once the ``with`` block has left)."""
        return self._hasher.hexdigest()

    def _hash_pending(self) -> None:
        while (data := self._pending.get()) is not None:
            self._hasher.update(data)


def link_atomic(source: Path, destination: Path) -> Path:
    """Make ``destination`` a hard link to ``source`` (a copy where linking is impossible),
    renamed into place so it is never half written.

    The two names then share one file: write neither in place. The blob cache re-hashes its
    copy on every use, so a changed destination is noticed there and fetched again.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.parent / f".tmp-{secrets.token_hex(8)}"
    try:
        os.link(source, tmp)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        return copy_atomic(source, destination)
    try:
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)  # still there when destination was the same file
    return destination


def _copy_range(src: int, dst: int, offset: int, count: int) -> int:
    """Copy up to ``count`` bytes at ``offset`` from ``src`` to ``dst`` (the kernel's copy
    where it can); return how many (0 at the end of ``src``)."""
    try:
        return os.copy_file_range(src, dst, count, offset, offset)
    except (OSError, AttributeError) as exc:  # AttributeError: not Linux
        if isinstance(exc, OSError) and exc.errno not in _NO_KERNEL_COPY:
            raise
    data = os.pread(src, count, offset)
    view = memoryview(data)
    while view:
        written = os.pwrite(dst, view, offset)
        view, offset = view[written:], offset + written
    return len(data)


def _hash_range(hasher: hashlib._Hash, fd: int, offset: int, count: int) -> None:
    """Hash a range of the staged file through a read-only map: no copy into Python (a
    tenth faster than ``pread`` here). Safe because the file is this process's own temp
    file, which nothing truncates under the map (that would be SIGBUS)."""
    start = offset - offset % mmap.ALLOCATIONGRANULARITY  # copy_file_range may copy less
    with (
        mmap.mmap(fd, count + offset - start, offset=start, access=mmap.ACCESS_READ) as mapped,
        memoryview(mapped) as view,
        view[offset - start :] as part,
    ):
        hasher.update(part)
