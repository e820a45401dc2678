"""``LocalAudit``: the audit service in-process, on a store."""

from __future__ import annotations

from collections.abc import Iterator

from modelpilot.audit.chain import iter_entries, list_entries, verify_chain
from modelpilot.audit.entities import AuditEntry, AuditVerification
from modelpilot.audit.protocol import MAX_AUDIT_PAGE, AuditPage
from modelpilot.errors import InvalidInput, shown
from modelpilot.store import Store


class LocalAudit:
    """The audit log of ``store`` (the server wraps the same class behind admin routes)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def list_entries(
        self,
        *,
        subject_prefix: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> AuditPage:
        """One page of entries, oldest first."""
        check_audit_limit(limit)
        entries = list_entries(
            self.store,
            subject_prefix=subject_prefix,
            since_ms=since_ms,
            limit=limit + 1,  # one more: is there a page before this one?
            before_id=before_id,
        )
        if len(entries) <= limit:
            return AuditPage(entries, None)
        page = entries[1:]
        return AuditPage(page, page[0].id)

    def export(
        self,
        *,
        subject_prefix: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditEntry]:
        """Every matching entry (the newest ``limit``), oldest first, read in batches."""
        if limit is not None and limit < 1:
            raise InvalidInput(f"limit must be at least 1; got {shown(limit)}.", field="limit")
        return iter_entries(
            self.store, subject_prefix=subject_prefix, since_ms=since_ms, limit=limit
        )

    def verify(self, *, expected_head: str | None = None) -> AuditVerification:
        """Walk and recompute the chain."""
        return verify_chain(self.store, expected_head=expected_head)


def check_audit_limit(limit: int) -> None:
    """Refuse an empty or oversized page."""
    if not 1 <= limit <= MAX_AUDIT_PAGE:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_AUDIT_PAGE}; got {shown(limit)}. Page back with "
            "before_id, or export every entry (modelpilot audit log --json).",
            field="limit",
        )


__all__ = ["LocalAudit", "check_audit_limit"]
