"""Documents attached to a model version: evaluations, gate verdicts, model-card edits,
monitoring reports.

Append-only: a new evaluation never overwrites an old one, so the card can say which
evidence a promotion relied on. Readers take the newest record of a kind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from modelpilot.clock import now_ms
from modelpilot.errors import InvalidInput, NotFound
from modelpilot.registry.entities import RECORD_KINDS, VersionRecord
from modelpilot.registry.service import get_version
from modelpilot.store import Store
from modelpilot.store.events import default_actor, record_event
from modelpilot.store.schema import version_records

KINDS = RECORD_KINDS


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
    check_kind(kind)
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"A version record's payload must be a JSON object; got {type(payload).__name__}.",
            field="payload",
        )
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


def check_kind(kind: str | None) -> None:
    """Refuse a record kind that does not exist, naming those that do."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput(
            f"Unknown version record kind {kind!r}; kinds are {', '.join(KINDS)}.", field="kind"
        )


def list_records(store: Store, ref: str, kind: str | None = None) -> list[VersionRecord]:
    """Records of a version, newest first."""
    check_kind(kind)
    mv = get_version(store, ref)
    query = select(version_records).where(
        version_records.c.model_name == mv.name, version_records.c.version == mv.version
    )
    if kind is not None:
        query = query.where(version_records.c.kind == kind)
    with store.read() as conn:
        rows = conn.execute(query.order_by(version_records.c.id.desc())).all()
    return [_record(r) for r in rows]


def _record(r: Any) -> VersionRecord:
    return VersionRecord(
        r.id, r.model_name, r.version, r.kind, r.created_ms, r.actor, r.payload, r.blob_digest
    )


def records_of_kind(
    store: Store, kind: str, *, before_id: int | None = None, limit: int = 100
) -> list[VersionRecord]:
    """Records of one kind across every version, newest first (a page of at most ``limit``,
    older than ``before_id`` when given)."""
    check_kind(kind)
    query = select(version_records).where(version_records.c.kind == kind)
    if before_id is not None:
        query = query.where(version_records.c.id < before_id)
    with store.read() as conn:
        rows = conn.execute(query.order_by(version_records.c.id.desc()).limit(limit)).all()
    return [_record(r) for r in rows]


def get_record(store: Store, record_id: int) -> VersionRecord:
    """One record by its id (NotFound when there is none)."""
    with store.read() as conn:
        row = conn.execute(select(version_records).where(version_records.c.id == record_id)).first()
    if row is None:
        raise NotFound(f"No version record with id {record_id}.", field="id")
    return _record(row)


def latest_record(store: Store, ref: str, kind: str) -> VersionRecord | None:
    """The newest record of ``kind``, if any."""
    records = list_records(store, ref, kind)
    return records[0] if records else None


def model_records(store: Store, name: str, kind: str) -> list[VersionRecord]:
    """Records of one kind on any version of model ``name`` (deleted versions included),
    newest first: for documents about the model as a whole, such as its risk register."""
    check_kind(kind)
    query = select(version_records).where(
        version_records.c.model_name == name, version_records.c.kind == kind
    )
    with store.read() as conn:
        rows = conn.execute(query.order_by(version_records.c.id.desc())).all()
    return [_record(r) for r in rows]
