"""Every ArtifactStore implementation keeps the same promises."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpilot.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    MemoryArtifactStore,
    sha256_bytes,
)
from modelpilot.errors import InvalidInput, NotFound

Factory = Callable[[Path], ArtifactStore]
FACTORIES: dict[str, Factory] = {
    "local": lambda root: LocalArtifactStore(root / "blobs"),
    "memory": lambda root: MemoryArtifactStore(),
}


@pytest.fixture(params=sorted(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    return FACTORIES[request.param](tmp_path)


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


def test_missing_blob_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFound, match="No artifact with digest"):
        store.get_bytes("0" * 64)


def test_digest_must_be_a_sha256_not_a_path(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInput, match="is not a sha256 hex digest"):
        store.exists("../../etc/passwd")


def test_local_store_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "blobs")
    for i in range(5):
        store.put_bytes(bytes([i]) * 100)
    leftovers = [p for p in (tmp_path / "blobs").rglob(".tmp-*")]
    assert leftovers == []
