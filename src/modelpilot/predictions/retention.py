"""Deleting old prediction-log segments: by hand (``modelpilot logs purge --before DATE``) and
by the policies' ``retention_days`` (the server's flusher, at most once an hour).

A segment goes only when every row in it is older than the cut-off: its newest
``timestamp_ms`` (read from the Parquet footer's statistics, not the rows) decides. Segments
are whole files, deleted with one ``unlink`` each, so readers see either the segment or not,
and every other segment stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from modelpilot.predictions.files import safe_name
from modelpilot.predictions.log_policy import PolicySet

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
_IsOld = Callable[[Path, int], bool]  # (segment, its newest timestamp_ms) -> delete it?


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed (or, with ``dry_run``, would remove)."""

    removed: list[Path] = field(default_factory=list)
    rows_removed: int = 0
    kept: int = 0  # segments left in place


def newest_ms(segment: Path) -> int | None:
    """The newest ``timestamp_ms`` in a segment, from its footer (None when unknown)."""
    meta = pq.read_metadata(segment)
    names = meta.schema.names
    if "timestamp_ms" not in names:
        return None
    column = names.index("timestamp_ms")
    newest: int | None = None
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics
        if stats is None or not stats.has_min_max:
            return None
        newest = int(stats.max) if newest is None else max(newest, int(stats.max))
    return newest


def purge_segments(
    folder: Path, before_ms: int, *, model: str | None = None, dry_run: bool = False
) -> PurgeResult:
    """Delete the segments (of one model, or all) whose rows are all older than ``before_ms``."""
    return _purge(folder, model, dry_run, lambda segment, newest: newest < before_ms)


def purge_expired(folder: Path, policies: PolicySet, now_ms: int) -> PurgeResult:
    """Delete segments older than their policies' ``retention_days``.

    A segment's rows may come through several deployments (and none); it goes when the
    newest row is past the *longest* retention that applies to any of them, and stays when
    one of them has no retention. So a policy never loses rows earlier than it says.
    """

    retentions = [
        p.retention_days
        for p in (*policies.models.values(), *policies.deployments.values())
        if p.retention_days is not None
    ]
    if not retentions:
        return PurgeResult()
    shortest_ms = min(retentions) * DAY_MS

    def expired(segment: Path, newest: int) -> bool:
        if newest >= now_ms - shortest_ms:  # too recent for any policy: skip reading rows
            return False
        days = _retention_days(segment, policies)
        return days is not None and newest < now_ms - days * DAY_MS

    return _purge(folder, None, False, expired)


def _retention_days(segment: Path, policies: PolicySet) -> int | None:
    table = pq.read_table(segment, columns=_present(segment, ["model", "deployment"]))
    models = set(table.column("model").to_pylist()) if "model" in table.column_names else set()
    deployments = (
        set(table.column("deployment").to_pylist())
        if "deployment" in table.column_names
        else {None}
    )
    longest = 0
    for model in models:
        for deployment in deployments:
            policy = policies.effective(str(model), deployment)
            if policy is None or policy.retention_days is None:
                return None
            longest = max(longest, policy.retention_days)
    return longest or None


def _present(segment: Path, wanted: list[str]) -> list[str]:
    names = set(pq.read_schema(segment).names)
    return [n for n in wanted if n in names]


def _purge(folder: Path, model: str | None, dry_run: bool, is_old: _IsOld) -> PurgeResult:
    removed, rows, kept = [], 0, 0
    pattern = f"{safe_name(model)}/seg-*.parquet" if model is not None else "**/seg-*.parquet"
    for segment in sorted(folder.glob(pattern)):
        try:
            newest = newest_ms(segment)
            if newest is None or not is_old(segment, newest):
                kept += 1
                continue
            count = pq.read_metadata(segment).num_rows
            if not dry_run:
                segment.unlink()
        except FileNotFoundError:  # another server's purge took it first
            continue
        removed.append(segment)
        rows += count
    if removed and not dry_run:
        log.info("purged %d prediction-log segments (%d rows) from %s", len(removed), rows, folder)
    return PurgeResult(removed, rows, kept)
