"""``modelpilot gc``: delete the blobs no record references, on the local folder or in S3.

Blobs are content-addressed and shared, so a blob can only go when *nothing* in the metadata
store names it. Every place a record names a blob (found by grepping ``put_bytes``,
``put_file``, ``adopt`` and ``digest`` across ``src/``):

- ``model_versions.package_digest``: a model package's manifest, **and** what the manifest
  names: every file in ``files`` and the ``input_example`` (models/package.py). Versions made
  by ``modelpilot optimize`` (ONNX candidates) are ordinary versions.
- ``run_artifacts.digest``: files logged under a run (``log_artifact``; tuning trials are
  child runs, so their artifacts are here too).
- ``datasets.location`` where ``storage = 'parquet'``: a dataset version's Parquet bytes
  (``storage = 'reference'`` names a file outside the store, never a blob).
- ``version_records.blob_digest``: an evaluation's HTML report (assessment.py). The other
  records (gate verdicts, monitoring reports, risk registers, card fields, optimization
  tables) are JSON in the row and name no blob.
- ``step_runs.inputs`` / ``step_runs.output`` (pipelines, the step cache): ``model``
  references carry a package digest (expanded like a version's); ``dataset`` references carry
  a dataset's *content* digest, whose bytes are a ``datasets`` row's ``location`` above;
  ``file`` references name files outside the store.
- Not blobs: the prediction log's segments (Parquet files in the data plane's home), Optuna
  studies (tables), resumable uploads in progress (``.tmp-upload-*`` files in the staging
  folder, never listed as blobs; a finished upload is a young blob until its record commits)
  and the caches (``BlobCache``, materialised packages), which are not the store.

Why a grace period, and why it is enough. Writers put bytes *before* the record that names
them commits (``log_model`` uploads every file, then registers the version in one
transaction; the server is sent blobs before the registration call), so for a moment every
new blob is unreferenced. gc therefore keeps blobs whose last write is younger than
``min_age_s`` (1 h by default, far longer than any registration), and a put of bytes already
stored refreshes the blob's age (the local store touches the file; S3 rewrites an object
older than ``REFRESH_AFTER_S`` onto itself), so an old orphan a writer is about to reference
again is young again too. Right before each batch is deleted, gc re-reads every blob's age
and then the references (in that order), and deletes only what is still old and still
unreferenced. What is left is a writer whose put of an *old* blob lands between that age
check and the delete (milliseconds for a local batch, one ``HEAD`` per blob plus the
reference query on S3) and whose record commits after the reference check: the blob it just
put is deleted, and its record names a missing blob (``NotFound`` naming the key on load).
Re-running the writer repairs it. A client of ``modelpilot server`` that finds a blob
present (``HEAD``) does not upload it, so that blob's age is not refreshed; the server checks
the blob exists again when the record arrives, leaving the same narrow window.

>>> from modelpilot.artifacts import MemoryArtifactStore
>>> from modelpilot.store import Store
>>> blobs, store = MemoryArtifactStore(), Store.open("sqlite:///:memory:")
>>> orphan = blobs.put_bytes(b"left behind by a failed registration")
>>> collect_garbage(store, blobs, min_age_s=0, is_dry_run=False).deleted
1
>>> blobs.exists(orphan)
False
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from modelpilot.artifacts import BlobInfo, CollectableArtifactStore
from modelpilot.errors import NotFound
from modelpilot.models.package import read_manifest
from modelpilot.store import Store
from modelpilot.store.events import default_actor, record_event
from modelpilot.store.schema import (
    datasets,
    model_versions,
    run_artifacts,
    step_runs,
    version_records,
)

DEFAULT_MIN_AGE_S = 3600.0
BATCH_BLOBS = 1000
EXAMPLES = 5


@dataclass(frozen=True)
class GcResult:
    """What one gc pass found and did. ``unreferenced`` are the blobs old enough to delete
    (on a dry run, what would be deleted); ``deleted`` those actually deleted."""

    location: str
    min_age_s: float
    is_dry_run: bool
    scanned: int
    scanned_bytes: int
    referenced: int
    kept_young: int
    unreferenced: list[BlobInfo] = field(default_factory=list)
    deleted: int = 0
    deleted_bytes: int = 0
    kept_on_recheck: int = 0

    @property
    def unreferenced_bytes(self) -> int:
        """Total size of :attr:`unreferenced`."""
        return sum(b.size_bytes for b in self.unreferenced)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form (a few examples, not every digest)."""
        return {
            "location": self.location,
            "min_age_s": self.min_age_s,
            "dry_run": self.is_dry_run,
            "scanned": self.scanned,
            "scanned_bytes": self.scanned_bytes,
            "referenced": self.referenced,
            "kept_young": self.kept_young,
            "unreferenced": len(self.unreferenced),
            "unreferenced_bytes": self.unreferenced_bytes,
            "deleted": self.deleted,
            "deleted_bytes": self.deleted_bytes,
            "kept_on_recheck": self.kept_on_recheck,
            "examples": [
                {"digest": b.digest, "size_bytes": b.size_bytes, "modified_s": b.modified_s}
                for b in self.unreferenced[:EXAMPLES]
            ],
        }


class References:
    """The digests the metadata store names, manifests expanded. Manifests are immutable
    (a digest names its bytes), so each is read once per gc, however often it re-checks."""

    def __init__(self, store: Store, blobs: CollectableArtifactStore) -> None:
        self.store = store
        self.blobs = blobs
        self._expanded: dict[str, frozenset[str]] = {}

    def collect(self) -> set[str]:
        """Every referenced digest, read in one transaction."""
        with self.store.read() as conn:
            direct, packages = _direct_references(conn)
        found = set(direct)
        for package in packages:
            found |= self._package(package)
        return found

    def _package(self, digest: str) -> frozenset[str]:
        expanded = self._expanded.get(digest)
        if expanded is None:
            expanded = self._expanded[digest] = frozenset(_package_blobs(self.blobs, digest))
        return expanded


def collect_garbage(
    store: Store,
    blobs: CollectableArtifactStore,
    *,
    min_age_s: float = DEFAULT_MIN_AGE_S,
    is_dry_run: bool = True,
    now_s: float | None = None,
    on_listed: Callable[[int], None] | None = None,
    on_deleted: Callable[[int], None] | None = None,
    actor: str | None = None,
) -> GcResult:
    """Find blobs nothing references and older than ``min_age_s``; delete them unless
    ``is_dry_run``. A real pass records one ``artifacts.gc`` audit event (count, bytes).

    ``on_listed(n)`` / ``on_deleted(n)`` report progress (``n`` more blobs); ``now_s`` is
    the clock ages are measured against (tests move it forward instead of waiting).
    """
    references = References(store, blobs)
    referenced = references.collect()
    cutoff = (time.time() if now_s is None else now_s) - min_age_s
    scanned = scanned_bytes = young = 0
    unreferenced: list[BlobInfo] = []
    for info in _counted(blobs.list_blobs(), on_listed):
        scanned += 1
        scanned_bytes += info.size_bytes
        if info.digest in referenced:
            continue
        if info.modified_s > cutoff:
            young += 1
        else:
            unreferenced.append(info)
    result = GcResult(
        blobs.describe(), min_age_s, is_dry_run, scanned, scanned_bytes, len(referenced), young,
        unreferenced,
    )  # fmt: skip
    if is_dry_run or not unreferenced:
        return result
    deleted: list[BlobInfo] = []
    for start in range(0, len(unreferenced), BATCH_BLOBS):
        batch = unreferenced[start : start + BATCH_BLOBS]
        # ages first, then references: a writer's put before the age check makes its blob
        # young; a record committed before the reference check is seen (module docstring)
        still_old = [i for i in (blobs.blob_info(b.digest) for b in batch) if _old(i, cutoff)]
        fresh = references.collect()
        doomed = [i for i in still_old if i is not None and i.digest not in fresh]
        blobs.delete_blobs([i.digest for i in doomed])
        deleted.extend(doomed)
        if on_deleted is not None:
            on_deleted(len(batch))
    count, size = len(deleted), sum(i.size_bytes for i in deleted)
    with store.write() as conn:
        record_event(
            conn, "artifacts.gc", f"artifacts:{result.location}", actor or default_actor(),
            {"deleted": count, "deleted_bytes": size, "scanned": scanned, "min_age_s": min_age_s},
        )  # fmt: skip
    return GcResult(
        result.location, min_age_s, False, scanned, scanned_bytes, len(referenced), young,
        unreferenced, count, size, len(unreferenced) - count,
    )  # fmt: skip


def _old(info: BlobInfo | None, cutoff: float) -> bool:
    return info is not None and info.modified_s <= cutoff


def _counted(
    infos: Iterable[BlobInfo], on_listed: Callable[[int], None] | None
) -> Iterator[BlobInfo]:
    for info in infos:
        yield info
        if on_listed is not None:
            on_listed(1)


def _direct_references(conn: Connection) -> tuple[set[str], set[str]]:
    """Digests named by rows (blobs) and package digests (to expand)."""
    direct = set(conn.execute(select(run_artifacts.c.digest)).scalars())
    direct |= set(
        conn.execute(select(datasets.c.location).where(datasets.c.storage == "parquet")).scalars()
    )
    direct |= {
        d for d in conn.execute(select(version_records.c.blob_digest)).scalars() if d is not None
    }
    packages = set(conn.execute(select(model_versions.c.package_digest)).scalars())
    for inputs, output in conn.execute(select(step_runs.c.inputs, step_runs.c.output)):
        packages |= set(_model_refs(inputs)) | set(_model_refs(output))
    return direct, packages


def _model_refs(value: Any) -> Iterator[str]:
    """Package digests of ``{"kind": "model", "digest": …}`` anywhere in a step's JSON."""
    if isinstance(value, dict):
        if value.get("kind") == "model" and isinstance(value.get("digest"), str):
            yield value["digest"]
        for item in value.values():
            yield from _model_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _model_refs(item)


def _package_blobs(blobs: CollectableArtifactStore, digest: str) -> set[str]:
    """A package's manifest and the blobs it names; just the digest when the manifest is
    gone already (nothing left to protect). A manifest that cannot be read otherwise
    (corrupt, not a package) stops gc: what it names is unknown."""
    try:
        manifest = read_manifest(blobs, digest)
    except NotFound:
        return {digest}
    files = manifest.get("files") or {}
    named = {str(d) for d in files.values()} if isinstance(files, dict) else set()
    example = manifest.get("input_example")
    return {digest, *named, *([str(example)] if example else [])}
