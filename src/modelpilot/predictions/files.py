"""The prediction log's folder layout and file rules, shared by its writer and readers.

``<home>/predictions/<model>/seg-*.parquet`` holds the segments (plus ``wal-*.jsonl`` files
of ``sync`` servers at the top); ``<home>/labels/<deployment>/`` the labels. Every file is
created with mode 0600 whatever the umask, because inputs may be personal data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

SEGMENT_PATTERN = "seg-*.parquet"


def log_folder(home: Path) -> Path:
    """The prediction log's folder in a modelpilot home: the one place that names it.

    >>> log_folder(Path("/srv/mp")).as_posix()
    '/srv/mp/predictions'
    """
    return home / "predictions"


def labels_folder(home: Path, deployment: str) -> Path:
    """Where the labels of one deployment are kept.

    >>> labels_folder(Path("/srv/mp"), "churn prod").as_posix()
    '/srv/mp/labels/churn_prod'
    """
    return home / "labels" / safe_name(deployment)


def safe_name(name: str) -> str:
    """A model or deployment name as a folder name (anything unusual becomes ``_``).

    >>> safe_name("churn/v2 eu")
    'churn_v2_eu'
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def segments_glob(folder: Path) -> str:
    """The glob that matches every segment (DuckDB reads it as the ``predictions`` view)."""
    return str(folder / "**" / SEGMENT_PATTERN)


def has_segments(folder: Path) -> bool:
    """True once at least one segment is on disk (DuckDB fails on a glob matching nothing)."""
    return any(folder.glob(f"**/{SEGMENT_PATTERN}"))


def private_file(path: Path) -> BinaryIO:
    """A new file only its owner may read (0600, whatever the umask), open for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # the umask may have taken bits; only these, exactly
    return os.fdopen(fd, "wb")


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (POSIX: fsync the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
