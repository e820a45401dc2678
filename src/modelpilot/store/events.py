"""Append-only change events (alias moved, version registered), written inside the change's
own transaction so a change and its record commit or vanish together.

Events are the audit log: each row is sealed onto a hash chain (see ``store/audit.py``) as it
is written, so an edit made directly in the database is detected by ``verify_chain``.
"""

from __future__ import annotations

import getpass
from typing import Any

from sqlalchemy import Connection, insert, select

from modelpilot.clock import now_ms
from modelpilot.store.audit import as_stored, chain_head, lock_chain, seal
from modelpilot.store.schema import events


def default_actor() -> str:
    """Who is acting when no authenticated identity is known: ``local:<os user>``."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:unknown"


def record_event(
    conn: Connection, kind: str, subject: str, actor: str, payload: dict[str, Any]
) -> int:
    """Append one event in the caller's transaction, sealed onto the audit hash chain; return
    its id.

    The chain lock is held until the caller's transaction ends, so concurrent changes append
    one after the other and ids follow chain order. Call it as the change's last statement:
    a row lock taken after it, while another writer holds that row and waits for the chain,
    would deadlock on PostgreSQL. ``payload`` carries what changed: by
    convention ``before``/``after`` where a value moved and ``reason`` where one was given.
    """
    lock_chain(conn)
    prev_hash = chain_head(conn)
    stamp, stored = now_ms(), as_stored(payload)
    inserted = conn.execute(
        insert(events).values(
            time_ms=stamp, kind=kind, subject=subject, actor=actor, payload=stored
        )
    ).inserted_primary_key
    assert inserted is not None  # an INSERT of one row always reports its key
    entry_id = int(inserted[0])
    seal(conn, entry_id, prev_hash, stamp, kind, subject, actor, stored)
    return entry_id


def list_events(conn: Connection, subject_prefix: str | None = None, limit: int = 100) -> list[Any]:
    """Newest events first, optionally for subjects starting with a prefix."""
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if subject_prefix is not None:
        query = query.where(events.c.subject.startswith(subject_prefix))
    return list(conn.execute(query).all())
