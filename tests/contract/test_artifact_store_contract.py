"""Every ArtifactStore implementation keeps the same promises: local folder, memory, and S3
on a real SeaweedFS server (tests/s3_server.py; each test its own key prefix)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpilot.artifacts import (
    ArtifactStore,
    BlobCache,
    LocalArtifactStore,
    MemoryArtifactStore,
    S3ArtifactStore,
    S3Location,
    sha256_bytes,
)
from modelpilot.errors import CorruptArtifact, InvalidInput, NotFound
from s3_server import RunningS3

# 5 MiB parts (S3's smallest) so the 20 MB blob below goes up as a multipart upload
PART_BYTES = 5 * 2**20


@dataclass
class Backend:
    """A store under test and how to change a blob's stored bytes behind its back."""

    store: ArtifactStore
    tamper: Callable[[str, bytes], None]


def _local(request: pytest.FixtureRequest, root: Path) -> Backend:
    store = LocalArtifactStore(root / "blobs")
    return Backend(store, lambda digest, data: store.path_for(digest).write_bytes(data))


def _memory(request: pytest.FixtureRequest, root: Path) -> Backend:
    store = MemoryArtifactStore()
    return Backend(store, lambda digest, data: store.blobs.__setitem__(digest, data))


def _s3(request: pytest.FixtureRequest, root: Path) -> Backend:
    server: RunningS3 = request.getfixturevalue("s3_server")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    location = S3Location(server.bucket, f"contract/{uuid.uuid4().hex}")
    store = S3ArtifactStore(
        location, cache=BlobCache(root / "cache", max_bytes=2**30), part_bytes=PART_BYTES
    )

    def tamper(digest: str, data: bytes) -> None:
        server.client().put_object(Bucket=server.bucket, Key=location.key(digest), Body=data)
        store.cache.discard(digest)

    return Backend(store, tamper)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "local": _local,
    "memory": _memory,
    "s3": _s3,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> ArtifactStore:
    return backend.store


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_put_then_get_returns_the_same_bytes_under_their_sha256(
    store: ArtifactStore, data: bytes
) -> None:
    digest = store.put_bytes(data)
    assert digest == sha256_bytes(data)
    assert store.exists(digest)
    assert store.get_bytes(digest) == data
    assert store.put_bytes(data) == digest  # idempotent


def test_files_stream_in_and_out(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (3 * 1024 * 1024 + 7))
    digest = store.put_file(source)
    target = store.fetch_to(digest, tmp_path / "out" / "copy.bin")
    assert target.read_bytes() == source.read_bytes()


def test_a_20_mb_blob_round_trips(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(uuid.uuid4().bytes * (20 * 2**20 // 16))  # S3: four 5 MiB parts
    digest = store.put_file(source)
    assert store.exists(digest)
    assert store.fetch_to(digest, tmp_path / "copy.bin").read_bytes() == source.read_bytes()


def test_missing_blob_is_not_found(store: ArtifactStore) -> None:
    assert not store.exists("0" * 64)
    with pytest.raises(NotFound, match="No artifact with digest"):
        store.get_bytes("0" * 64)


def test_digest_must_be_a_sha256_not_a_path(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInput, match="is not a sha256 hex digest"):
        store.exists("../../etc/passwd")


def test_a_blob_changed_behind_the_stores_back_is_refused(backend: Backend, tmp_path: Path) -> None:
    digest = backend.store.put_bytes(b"the real weights")
    backend.tamper(digest, b"other weights")
    with pytest.raises(CorruptArtifact, match="corrupted|changed behind"):
        backend.store.get_bytes(digest)
    with pytest.raises(CorruptArtifact):
        backend.store.fetch_to(digest, tmp_path / "model.bin")
    assert not (tmp_path / "model.bin").exists()


def test_concurrent_puts_of_one_blob_store_it_once(store: ArtifactStore) -> None:
    data = uuid.uuid4().bytes * 4096
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = set(pool.map(lambda _: store.put_bytes(data), range(8)))
    assert digests == {sha256_bytes(data)}
    assert store.get_bytes(digests.pop()) == data


def test_local_store_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "blobs")
    for i in range(5):
        store.put_bytes(bytes([i]) * 100)
    leftovers = [p for p in (tmp_path / "blobs").rglob(".tmp-*")]
    assert leftovers == []
