"""Reading the audit log: verify the hash chain, list entries page by page, export them all.

Rows are sealed as they are written (:mod:`modelpilot.store.audit`); this module only reads.
Every walk is keyset-paginated by id, so memory stays flat however long the log is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select

from modelpilot.audit.entities import AuditEntry, AuditVerification, Problem
from modelpilot.store.audit import GENESIS_HASH, entry_hash
from modelpilot.store.schema import events
from modelpilot.store.store import Store

_BATCH_ROWS = 2000


def verify_chain(store: Store, *, expected_head: str | None = None) -> AuditVerification:
    """Walk the log in id order and recompute every link; stops at the first broken entry.

    Use it on a schedule or before trusting the log for an investigation. ``expected_head``:
    a head hash recorded earlier (e.g. printed by a previous run), which must still be on the
    chain; that is what reveals the newest rows being deleted.
    """
    with store.read() as conn:
        walk = _Walk(expected_head)
        for row in _rows(conn):
            problem = walk.step(row)
            if problem is not None:
                return _explain(conn, walk, row, problem)
    if expected_head is not None and not walk.head_seen:
        detail = f"the recorded head {expected_head[:16]} is no longer on the chain"
        return walk.result(walk.last_id, "truncated", f"{detail}; newer entries were deleted")
    return walk.result(None, None, "")


def _rows(conn: Connection) -> Iterator[Row[Any]]:
    """Every event in id order, fetched in batches (keyset pagination keeps memory flat)."""
    after = -1
    while True:
        batch = conn.execute(
            select(events).where(events.c.id > after).order_by(events.c.id).limit(_BATCH_ROWS)
        ).all()
        yield from batch
        if len(batch) < _BATCH_ROWS:
            return
        after = batch[-1].id


class _Walk:
    """The running state of one verification: the expected link and what was seen."""

    def __init__(self, expected_head: str | None) -> None:
        self.expected_head = expected_head
        self.head_seen = False
        self.checked = 0
        self.pre_chain = 0
        self.expected_prev: str | None = None  # None until the first sealed row
        self.before_prev: str | None = None
        self.last_id: int | None = None

    def step(self, row: Row[Any]) -> Problem | None:
        if row.entry_hash is None:
            if self.expected_prev is None:
                self.pre_chain += 1
                return None
            return "inserted"
        expected = GENESIS_HASH if self.expected_prev is None else self.expected_prev
        if row.prev_hash != expected:
            skipped = self.before_prev is not None and row.prev_hash == self.before_prev
            return "inserted" if skipped else "deleted"
        if _recomputed(row) != row.entry_hash:
            return "edited"
        self.before_prev, self.expected_prev = expected, row.entry_hash
        self.head_seen = self.head_seen or row.entry_hash == self.expected_head
        self.checked += 1
        self.last_id = row.id
        return None

    def result(
        self, bad_id: int | None, problem: Problem | None, detail: str, *, uncount: int = 0
    ) -> AuditVerification:
        return AuditVerification(
            ok=problem is None,
            entries_checked=self.checked - uncount,
            pre_chain=self.pre_chain,
            head_hash=self.expected_prev or GENESIS_HASH,
            first_bad_id=bad_id,
            problem=problem,
            detail=detail,
        )


def _recomputed(row: Row[Any]) -> str:
    return entry_hash(
        row.prev_hash or "", row.id, row.time_ms, row.kind, row.subject, row.actor, row.payload
    )


def _explain(conn: Connection, walk: _Walk, row: Row[Any], problem: Problem) -> AuditVerification:
    """Name the first bad entry; tell a moved row from an edited or deleted one."""
    if problem == "inserted":
        if row.entry_hash is None:
            return walk.result(row.id, problem, "a row without a seal after the chain began")
        detail = f"entry {row.id} links past it to the entry before"
        return walk.result(walk.last_id, problem, detail, uncount=1)
    if problem == "edited":
        owner = _owner_of_content(conn, row)
        if owner is not None:
            return walk.result(row.id, "reordered", f"its content belongs at entry {owner}")
        return walk.result(row.id, problem, "its content no longer matches its hash")
    linked = conn.execute(
        select(events.c.id).where(events.c.entry_hash == row.prev_hash).limit(1)
    ).scalar_one_or_none()
    if linked is not None and linked != row.id:
        return walk.result(row.id, "reordered", f"it links to entry {linked}, out of order")
    after = f"after entry {walk.last_id}" if walk.last_id is not None else "at the start"
    return walk.result(
        row.id, problem, f"the entry {after} that it links to is missing or was rewritten"
    )


def _owner_of_content(conn: Connection, moved: Row[Any]) -> int | None:
    """The id whose seal this row's content satisfies, when the content was moved there."""
    for row in _rows(conn):
        if row.id == moved.id or row.entry_hash is None:
            continue
        sealed = entry_hash(
            row.prev_hash or "",
            row.id,
            moved.time_ms,
            moved.kind,
            moved.subject,
            moved.actor,
            moved.payload,
        )
        if sealed == row.entry_hash:
            return int(row.id)
    return None


def list_entries(
    store: Store,
    *,
    subject_prefix: str | None = None,
    since_ms: int | None = None,
    limit: int | None = 100,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """The newest ``limit`` entries (all when None) matching the filters, oldest first;
    ``before_id`` pages further back (only entries with a smaller id).

    >>> store = Store.open("sqlite:///:memory:")
    >>> list_entries(store)
    []
    """
    query = _filtered(select(events), subject_prefix, since_ms).order_by(events.c.id.desc())
    if before_id is not None:
        query = query.where(events.c.id < before_id)
    if limit is not None:
        query = query.limit(limit)
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [_entry(r) for r in reversed(rows)]


def iter_entries(
    store: Store,
    *,
    subject_prefix: str | None = None,
    since_ms: int | None = None,
    limit: int | None = None,
) -> Iterator[AuditEntry]:
    """The newest ``limit`` matching entries (every one when None), oldest first, read in
    batches of short transactions: the export of a long log never sits in memory at once."""
    after = -1
    if limit is not None:
        matching = _filtered(select(events.c.id), subject_prefix, since_ms)
        newest = matching.order_by(events.c.id.desc()).limit(limit).subquery()
        with store.read() as conn:
            first = conn.execute(select(func.min(newest.c.id))).scalar_one_or_none()
        if first is None:
            return
        after = int(first) - 1
    while True:
        query = _filtered(select(events), subject_prefix, since_ms).where(events.c.id > after)
        with store.read() as conn:
            batch = conn.execute(query.order_by(events.c.id).limit(_BATCH_ROWS)).all()
        yield from (_entry(r) for r in batch)
        if len(batch) < _BATCH_ROWS:
            return
        after = batch[-1].id


def _filtered(query: Select[Any], subject_prefix: str | None, since_ms: int | None) -> Select[Any]:
    if subject_prefix is not None:
        query = query.where(events.c.subject.startswith(subject_prefix, autoescape=True))
    if since_ms is not None:
        query = query.where(events.c.time_ms >= since_ms)
    return query


def _entry(r: Row[Any]) -> AuditEntry:
    return AuditEntry(
        r.id, r.time_ms, r.kind, r.subject, r.actor, r.payload, r.prev_hash, r.entry_hash
    )


__all__ = ["iter_entries", "list_entries", "verify_chain"]
