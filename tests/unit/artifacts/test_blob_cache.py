"""The read-through cache of remote blobs: verified on use, bounded, least recently used out."""

from __future__ import annotations

import os
from pathlib import Path

from modelpilot.artifacts import BlobCache, sha256_bytes


def _add(cache: BlobCache, data: bytes) -> str:
    fd, tmp = cache.open_temp()
    os.write(fd, data)
    os.close(fd)
    digest = sha256_bytes(data)
    cache.add(tmp, digest)
    return digest


def test_past_its_bound_the_least_recently_used_blob_goes(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=3000)
    a, b, c = (_add(cache, bytes([i]) * 1000) for i in range(3))
    assert cache.size_bytes() == 3000
    assert cache.lookup(a) is not None  # a used after b: b is now the oldest
    d = _add(cache, b"d" * 1000)
    assert cache.lookup(b) is None
    assert all(cache.lookup(x) is not None for x in (a, c, d))
    assert cache.size_bytes() == 3000


def test_a_blob_larger_than_the_bound_stays_until_the_next_addition(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=100)
    small = _add(cache, b"s" * 50)
    big = _add(cache, b"b" * 500)
    assert cache.lookup(small) is None and cache.lookup(big) is not None
    _add(cache, b"t" * 50)
    assert cache.lookup(big) is None
    assert cache.size_bytes() == 50


def test_a_cached_copy_whose_bytes_changed_is_deleted_not_returned(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10_000)
    digest = _add(cache, b"weights")
    cache.path_for(digest).write_bytes(b"tampered")
    assert cache.lookup(digest) is None
    assert not cache.path_for(digest).exists()


def test_temp_files_are_not_counted_or_evicted(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10)
    fd, tmp = cache.open_temp()
    os.write(fd, b"x" * 100)
    os.close(fd)
    assert cache.size_bytes() == 0
    assert cache.evict() == 0 and tmp.exists()
