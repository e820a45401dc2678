"""Write-ahead files of ``sync`` servers: append and fsync, convert into segments, recover
the files of writers that died.

Each file is exclusively ``flock``-ed by its writer from creation until it is converted; the
kernel drops the lock when the writer dies, which is how a recoverer tells a dead writer's
file from a live one (see :class:`~modelpilot.predictions.writer.PredictionLog`).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from modelpilot.clock import now_ms
from modelpilot.predictions.batch import LogBatch
from modelpilot.predictions.files import fsync_dir, private_file
from modelpilot.predictions.segments import write_segments

_SEQ = itertools.count()


@dataclass
class WalFile:
    """A write-ahead file this process owns, exclusively locked from creation to conversion."""

    path: Path
    handle: BinaryIO
    size_bytes: int = 0

    @staticmethod
    def create(folder: Path, writer: str) -> WalFile:
        """Create, lock, then rename into place: no other process ever sees it unlocked."""
        name = f"wal-{writer}-{now_ms()}-{next(_SEQ)}.jsonl"
        tmp = folder / f".{name}.tmp"
        handle = private_file(tmp)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, folder / name)
        fsync_dir(folder)
        return WalFile(folder / name, handle)

    def append(self, line: bytes) -> None:
        self.handle.write(line)
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.size_bytes += len(line)

    def convert(self, folder: Path) -> int:
        """Into segments, then delete; the lock is released only after the file is gone."""
        written = convert_wal(folder, self.path)
        self.handle.close()
        return written

    def discard_if_empty(self) -> None:
        if self.size_bytes == 0:
            self.path.unlink()
        self.handle.close()


def convert_wal(folder: Path, wal: Path) -> int:
    """Turn one closed WAL file into segments, then delete it (a torn last line is skipped).

    The caller holds the file's lock. Lines are batches (``{"model", "size", "columns"}``); a
    line without ``columns`` is one row, as earlier versions wrote them.
    """
    batches, rows = [], []
    with wal.open("rb") as handle:
        for line in handle:
            with contextlib.suppress(orjson.JSONDecodeError):
                doc = orjson.loads(line)
                if "columns" in doc:
                    batches.append(LogBatch(doc["model"], doc["size"], doc["columns"]))
                else:
                    rows.append(doc)
    batches += LogBatch.from_rows(rows)
    name = f"seg-{wal.stem.removeprefix('wal-')}.parquet"
    written = write_segments(folder, batches, name=name) if batches else 0
    wal.unlink()
    fsync_dir(folder)
    return written


def recover_wal_files(folder: Path) -> int:
    """Convert WAL files nobody holds: their writer died (or shut down before converting).

    A file whose lock another process holds is live and left alone, whatever its name says.
    """
    recovered = 0
    for wal in sorted(folder.glob("wal-*.jsonl")):
        with _unowned(wal) as is_ours:
            if is_ours:
                recovered += convert_wal(folder, wal)
    return recovered


@contextlib.contextmanager
def _unowned(path: Path) -> Iterator[bool]:
    """Lock ``path`` if no process holds it; True while held and still the file at ``path``.

    The inode check matters: another recoverer may convert and delete the file between our
    ``open`` and our lock, and converting that deleted inode again would duplicate its rows.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        yield same
