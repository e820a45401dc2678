"""The streaming helpers of the S3 store: a staged copy hashed behind the kernel's copy, an
in-order hashing writer, and a destination linked into place atomically."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from modelpilot.artifacts.streaming import HashingWriter, copy_hashed, link_atomic


def test_a_staged_copy_over_many_chunks_has_the_sources_bytes_and_their_sha256(
    tmp_path: Path,
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(5 * 65536 + 123))  # five whole chunks and a tail
    tmp, digest = copy_hashed(source, tmp_path / "stage", chunk_bytes=65536)
    assert tmp.parent == tmp_path / "stage" and tmp.name.startswith(".tmp-")
    assert tmp.read_bytes() == source.read_bytes()
    assert digest == hashlib.sha256(source.read_bytes()).hexdigest()


def test_an_empty_file_stages_as_the_empty_blob(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    tmp, digest = copy_hashed(tmp_path / "empty", tmp_path)
    assert tmp.read_bytes() == b"" and digest == hashlib.sha256(b"").hexdigest()


def test_a_missing_source_leaves_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        copy_hashed(tmp_path / "absent", tmp_path / "stage")
    assert list((tmp_path / "stage").iterdir()) == []


def test_the_writer_hashes_what_it_writes_in_order() -> None:
    out = io.BytesIO()
    with HashingWriter(out, queue_chunks=1) as writer:  # the writes wait on the hash
        for piece in (b"a" * 300_000, b"b", b"c" * 5000):
            writer.write(piece)
    assert out.getvalue() == b"a" * 300_000 + b"b" + b"c" * 5000
    assert writer.hexdigest() == hashlib.sha256(out.getvalue()).hexdigest()
    assert writer.size_bytes == len(out.getvalue())


def test_a_failed_write_still_stops_the_hashing_thread() -> None:
    class Full(io.BytesIO):
        def write(self, data: object) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"), HashingWriter(Full()) as writer:
        writer.write(b"x" * 10_000)
    assert not any(t.name == "sha256" and t.is_alive() for t in threading.enumerate())


def test_a_linked_destination_shares_the_file_and_replaces_what_was_there(
    tmp_path: Path,
) -> None:
    blob = tmp_path / "cache" / "blob"
    blob.parent.mkdir()
    blob.write_bytes(b"weights")
    destination = tmp_path / "package" / "model.bin"
    destination.parent.mkdir()
    destination.write_bytes(b"old weights")
    assert link_atomic(blob, destination).read_bytes() == b"weights"
    assert destination.stat().st_ino == blob.stat().st_ino
    link_atomic(blob, destination)  # again onto the same file: a no-op rename
    assert sorted(p.name for p in destination.parent.iterdir()) == ["model.bin"]


def test_linking_a_missing_blob_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        link_atomic(tmp_path / "gone", tmp_path / "out" / "model.bin")
    assert list((tmp_path / "out").iterdir()) == []
