"""The prediction log's segments in an S3-compatible bucket, shared by every machine.

Replicas on several machines each write their own local log (``<home>/predictions``). With
``MODELPILOT_PREDICTIONS_URI=s3://bucket/prefix`` each one also **ships** its sealed segments
to the bucket under the same relative path (``prefix/<model>/seg-….parquet``), and whoever
reads the log (a monitoring job, ``modelpilot logs query``, ``mp.read_predictions``) first
**pulls** the segments it lacks into its own log folder. Every reader then sees every
machine's rows, through the same DuckDB view as before.

Why copies rather than DuckDB reading the bucket directly: DuckDB's S3 support is an
extension it downloads at run time (modelpilot never downloads anything at run time), and a
local copy is read many times by the windows of the monitoring jobs. The objects are plain
Parquet, so any tool reads the bucket as it is::

    import pyarrow.dataset as ds, pyarrow.fs as fs
    s3 = fs.S3FileSystem(endpoint_override="http://127.0.0.1:8333")
    table = ds.dataset("bucket/prefix", filesystem=s3, format="parquet").to_table()

Guarantees: a segment is immutable once written (its name is unique: a writer id, or a WAL
file's), so ship and pull only ever copy whole files; a segment is uploaded with its sha256 in
the object's metadata and a pulled copy is checked against it before it is renamed into place
(a temp file first, mode 0600), so a reader never sees a partial or altered file. The local
segment is kept after shipping (local retention still applies); a failed upload is retried at
the next ship, so nothing the data plane acknowledged is lost to a bucket outage.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelpilot.errors import CorruptArtifact, InvalidInput
from modelpilot.predictions.files import SEGMENT_PATTERN, fsync_dir, private_file

if TYPE_CHECKING:
    from modelpilot.config import Settings

SETTING = "MODELPILOT_PREDICTIONS_URI"


@dataclass(frozen=True)
class ShipResult:
    """What one ship or pull did."""

    copied: int  # segments uploaded (ship) or downloaded (pull)
    present: int  # segments that were there already


class LogBucket:
    """Ship and pull the prediction log's segments (see the module docstring).

    >>> LogBucket("s3://logs/team-a").uri
    's3://logs/team-a'
    """

    def __init__(self, uri: str, *, max_attempts: int = 5) -> None:
        from modelpilot.artifacts.s3 import S3Access, S3Location

        scheme, _, rest = uri.partition("://")
        if scheme != "s3" or not rest.split("/")[0]:
            raise InvalidInput(
                f"{SETTING}={uri[:200]!r} is not an S3 URI: expected s3://bucket or "
                "s3://bucket/prefix. Unset it to keep the prediction log on this machine only.",
                field="predictions_uri",
            )
        self.location = S3Location.parse(uri)
        self.uri = self.location.uri()
        # The artifact store's S3 access: the same client settings, retries and error texts.
        self._s3 = S3Access(
            self.location,
            max_attempts=max_attempts,
            label="Prediction log bucket",
            setting=SETTING,
        )
        self._shipped: set[str] | None = None  # keys known to be in the bucket
        self._lock = threading.Lock()  # one ship at a time per process

    def ship(self, folder: Path) -> ShipResult:
        """Upload every segment under ``folder`` the bucket lacks (the first call lists the
        bucket once; later calls remember what went up)."""
        with self._lock:
            if self._shipped is None:
                self._shipped = set(self._keys())
            copied = present = 0
            for path, relative in _segments(folder):
                key = self._key(relative)
                if key in self._shipped:
                    present += 1
                    continue
                self._s3.call(
                    f"uploading prediction log segment {self.location.uri(key)}",
                    self._s3.client().upload_file,
                    Filename=str(path),
                    Bucket=self.location.bucket,
                    Key=key,
                    ExtraArgs={"Metadata": {"sha256": _sha256(path)}},
                )
                self._shipped.add(key)
                copied += 1
            return ShipResult(copied, present)

    def pull(self, folder: Path) -> ShipResult:
        """Download into ``folder`` every segment of the bucket it lacks, verified."""
        copied = present = 0
        for key in self._keys():
            relative = self._relative(key)
            if relative is None:
                continue
            target = folder / relative
            if target.exists():
                present += 1
                continue
            self._download(key, target)
            copied += 1
        return ShipResult(copied, present)

    def _download(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{os.urandom(4).hex()}.pull"
        try:
            response = self._s3.call(
                f"downloading prediction log segment {self.location.uri(key)}",
                self._s3.client().get_object,
                Bucket=self.location.bucket,
                Key=key,
            )
            digest = hashlib.sha256()
            with private_file(tmp) as handle:
                for chunk in response["Body"].iter_chunks(1 << 20):
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            expected = response.get("Metadata", {}).get("sha256")
            if expected and digest.hexdigest() != expected:
                raise CorruptArtifact(
                    f"Prediction log segment {self.location.uri(key)} does not match the "
                    f"sha256 it was shipped with ({digest.hexdigest()[:12]}… vs "
                    f"{expected[:12]}…): it changed in the bucket. Delete it there and ship "
                    "again from the machine that wrote it."
                )
            os.replace(tmp, target)
            fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def _keys(self) -> Iterator[str]:
        """Every segment key under the prefix (paged: 1,000 keys a request)."""
        paginator = self._s3.client().get_paginator("list_objects_v2")
        prefix = f"{self.location.prefix}/" if self.location.prefix else ""
        pages = self._s3.call(
            f"listing {self.uri}",
            lambda: list(paginator.paginate(Bucket=self.location.bucket, Prefix=prefix)),
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if self._relative(key) is not None:
                    yield key

    def _key(self, relative: str) -> str:
        return f"{self.location.prefix}/{relative}" if self.location.prefix else relative

    def _relative(self, key: str) -> str | None:
        """``<model>/seg-….parquet`` of a key, or None for anything else under the prefix."""
        prefix = f"{self.location.prefix}/" if self.location.prefix else ""
        relative = key[len(prefix) :] if key.startswith(prefix) else ""
        parts = relative.split("/")
        valid = (
            len(parts) == 2
            and parts[0] not in {"", ".", ".."}
            and Path(parts[1]).match(SEGMENT_PATTERN)
        )
        return relative if valid else None


def log_bucket(settings: Settings) -> LogBucket | None:
    """The bucket of ``settings.predictions_uri``, or None when the log stays local."""
    uri = settings.predictions_uri
    return LogBucket(uri, max_attempts=settings.s3_max_attempts) if uri else None


def pull_log(home: Path, bucket: LogBucket | None) -> None:
    """Before reading ``home``'s log: pull the bucket's new segments into it (when the log
    is shared through a bucket; a no-op otherwise). A bucket that cannot be read fails the
    read with its clear error rather than answering from part of the log."""
    if bucket is not None:
        from modelpilot.predictions.files import log_folder

        bucket.pull(log_folder(home))


def _segments(folder: Path) -> Iterator[tuple[Path, str]]:
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f"*/{SEGMENT_PATTERN}")):
        yield path, f"{path.parent.name}/{path.name}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
