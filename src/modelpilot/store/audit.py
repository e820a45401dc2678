"""The audit log's hash chain: how an event row is sealed, and how the chain is verified.

Every event row carries ``prev_hash`` (the previous row's ``entry_hash``) and ``entry_hash``
= sha256 of the canonical JSON of the row: its id, time, kind, subject, actor, payload and
``prev_hash``. So an edit of any column breaks that row's own hash, a deleted row breaks the
next row's link, and rows moved to other ids break both. The first sealed row links to
:data:`GENESIS_HASH`; rows written before the chain existed (``entry_hash`` NULL, lower ids)
are a *pre-chain* prefix that is counted but cannot be checked.

There is no secret key: the chain is tamper-*evident* against edits in the database, not
against someone who rewrites every later row too. Deleting the newest rows is only visible
against a head hash recorded elsewhere (``verify_chain(..., expected_head=...)``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Row, select, text, update

from modelpilot.store.schema import events
from modelpilot.store.store import Store

GENESIS_HASH = "0" * 64
Problem = Literal["edited", "deleted", "reordered", "inserted", "truncated"]
_BATCH_ROWS = 2000
# Any constant works: it names the one lock every PostgreSQL writer of events takes in turn.
_PG_LOCK_KEY = 0x6D705F6175646974  # "mp_audit"


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, ASCII, floats as Python's shortest repr.

    >>> canonical_json({"b": 1.0, "a": [1, "é"]})
    '{"a":[1,"\\\\u00e9"],"b":1.0}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def as_stored(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it reads back from a JSON column (tuples become lists, keys strings).

    The hash covers what verification will read, so a row is sealed over this form.

    >>> as_stored({1: (2, 3)})
    {'1': [2, 3]}
    """
    stored: dict[str, Any] = json.loads(json.dumps(payload))
    return stored


def entry_hash(
    prev_hash: str, entry_id: int, time_ms: int, kind: str, subject: str, actor: str, payload: Any
) -> str:
    """The sha256 that seals one row onto the chain after ``prev_hash``.

    >>> entry_hash(GENESIS_HASH, 1, 0, "k", "s", "a", {})[:12]
    'd18d90159357'
    """
    body = {
        "id": entry_id,
        "time_ms": time_ms,
        "kind": kind,
        "subject": subject,
        "actor": actor,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


def lock_chain(conn: Connection) -> None:
    """Serialise appenders until this transaction ends, so two never link to the same head.

    PostgreSQL needs a transaction-level advisory lock; SQLite's write transactions already
    start with ``BEGIN IMMEDIATE`` and hold the database's single write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def chain_head(conn: Connection) -> str:
    """The newest sealed row's hash (:data:`GENESIS_HASH` on an empty or pre-chain log)."""
    head = conn.execute(
        select(events.c.entry_hash)
        .where(events.c.entry_hash.is_not(None))
        .order_by(events.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return head if head is not None else GENESIS_HASH


def seal(
    conn: Connection,
    entry_id: int,
    prev_hash: str,
    time_ms: int,
    kind: str,
    subject: str,
    actor: str,
    payload: Any,
) -> str:
    """Write ``prev_hash`` and ``entry_hash`` onto the freshly inserted row ``entry_id``."""
    sealed = entry_hash(prev_hash, entry_id, time_ms, kind, subject, actor, payload)
    conn.execute(
        update(events).where(events.c.id == entry_id).values(prev_hash=prev_hash, entry_hash=sealed)
    )
    return sealed


@dataclass(frozen=True)
class AuditVerification:
    """What ``verify_chain`` found: ``ok``, or the first bad entry and what happened to it."""

    ok: bool
    entries_checked: int
    pre_chain: int
    head_hash: str
    first_bad_id: int | None = None
    problem: Problem | None = None
    detail: str = ""

    @property
    def message(self) -> str:
        """One line for the CLI and logs."""
        if self.ok:
            return (
                f"Audit chain intact: {self.entries_checked} entries checked, "
                f"{self.pre_chain} pre-chain, head {self.head_hash[:16]}."
            )
        return (
            f"Audit chain broken at entry {self.first_bad_id}: {self.problem} ({self.detail}); "
            f"{self.entries_checked} entries before it verified. Restore the events table from "
            "a backup and compare exported logs (modelpilot audit log -o) to find the change."
        )


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


@dataclass(frozen=True)
class AuditEntry:
    """One audit log entry as listed and exported (a JSON line of ``to_dict()``)."""

    id: int
    time_ms: int
    kind: str
    subject: str
    actor: str
    payload: dict[str, Any]
    prev_hash: str | None
    entry_hash: str | None

    @property
    def is_authenticated(self) -> bool:
        """False for ``local:<os user>`` actors: local mode trusts the OS user, proves nothing."""
        return not self.actor.startswith("local:")

    def to_dict(self) -> dict[str, Any]:
        """The entry with its seal, so an export can be checked against the chain later."""
        return {
            "id": self.id,
            "time_ms": self.time_ms,
            "kind": self.kind,
            "subject": self.subject,
            "actor": self.actor,
            "authenticated": self.is_authenticated,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }


def list_entries(
    store: Store,
    *,
    subject_prefix: str | None = None,
    since_ms: int | None = None,
    limit: int | None = 100,
) -> list[AuditEntry]:
    """The newest ``limit`` entries (all when None) matching the filters, oldest first.

    >>> store = Store.open("sqlite:///:memory:")
    >>> list_entries(store)
    []
    """
    query = select(events).order_by(events.c.id.desc())
    if subject_prefix is not None:
        query = query.where(events.c.subject.startswith(subject_prefix, autoescape=True))
    if since_ms is not None:
        query = query.where(events.c.time_ms >= since_ms)
    if limit is not None:
        query = query.limit(limit)
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [
        AuditEntry(
            r.id, r.time_ms, r.kind, r.subject, r.actor, r.payload, r.prev_hash, r.entry_hash
        )
        for r in reversed(rows)
    ]
