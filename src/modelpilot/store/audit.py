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

This module seals rows as they are written (``store/events.py`` calls it in every change's
transaction); reading, exporting and verifying the chain is :mod:`modelpilot.audit`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, select, text, update

from modelpilot.store.schema import events

GENESIS_HASH = "0" * 64
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
