"""Append-only change events (alias moved, version registered), written inside the change's
own transaction so a change and its record commit or vanish together."""

from __future__ import annotations

import getpass
from typing import Any

from sqlalchemy import Connection, insert, select

from modelpilot.clock import now_ms
from modelpilot.store.schema import events


def default_actor() -> str:
    """Who is acting when no authenticated identity is known: ``local:<os user>``."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:unknown"


def record_event(
    conn: Connection, kind: str, subject: str, actor: str, payload: dict[str, Any]
) -> None:
    """Append one event in the caller's transaction."""
    conn.execute(
        insert(events).values(
            time_ms=now_ms(), kind=kind, subject=subject, actor=actor, payload=payload
        )
    )


def list_events(conn: Connection, subject_prefix: str | None = None, limit: int = 100) -> list[Any]:
    """Newest events first, optionally for subjects starting with a prefix."""
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if subject_prefix is not None:
        query = query.where(events.c.subject.startswith(subject_prefix))
    return list(conn.execute(query).all())
