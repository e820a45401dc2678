"""Documents attached to a model version: evaluations, gate verdicts, model-card edits.

Append-only: a new evaluation never overwrites an old one, so the card can say which
evidence a promotion relied on. Readers take the newest record of a kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from modelpilot.clock import now_ms
from modelpilot.registry.service import get_version
from modelpilot.store import Store
from modelpilot.store.events import default_actor, record_event
from modelpilot.store.schema import version_records

KINDS = ("evaluation", "gate", "card_fields", "note")


@dataclass(frozen=True)
class VersionRecord:
    """One stored document."""

    id: int
    model_name: str
    version: int
    kind: str
    created_ms: int
    actor: str
    payload: dict[str, Any]
    blob_digest: str | None


def add_record(
    store: Store,
    ref: str,
    kind: str,
    payload: dict[str, Any],
    *,
    blob_digest: str | None = None,
    actor: str | None = None,
) -> VersionRecord:
    """Attach ``payload`` to the version behind ``ref``."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")  # programming error, not user input
    mv = get_version(store, ref)
    who = actor or default_actor()
    created = now_ms()
    with store.write() as conn:
        new_id = conn.execute(
            insert(version_records).values(
                model_name=mv.name,
                version=mv.version,
                kind=kind,
                created_ms=created,
                actor=who,
                payload=payload,
                blob_digest=blob_digest,
            )
        ).inserted_primary_key
        record_event(conn, f"version.{kind}", f"model:{mv.name}", who, {"version": mv.version})
    assert new_id is not None
    return VersionRecord(
        int(new_id[0]), mv.name, mv.version, kind, created, who, payload, blob_digest
    )


def list_records(store: Store, ref: str, kind: str | None = None) -> list[VersionRecord]:
    """Records of a version, newest first."""
    mv = get_version(store, ref)
    query = select(version_records).where(
        version_records.c.model_name == mv.name, version_records.c.version == mv.version
    )
    if kind is not None:
        query = query.where(version_records.c.kind == kind)
    with store.read() as conn:
        rows = conn.execute(query.order_by(version_records.c.id.desc())).all()
    return [
        VersionRecord(
            r.id, r.model_name, r.version, r.kind, r.created_ms, r.actor, r.payload, r.blob_digest
        )
        for r in rows
    ]


def latest_record(store: Store, ref: str, kind: str) -> VersionRecord | None:
    """The newest record of ``kind``, if any."""
    records = list_records(store, ref, kind)
    return records[0] if records else None
