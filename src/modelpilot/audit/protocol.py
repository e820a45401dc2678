"""The audit seam: one typed interface, a local and an HTTP implementation.

``modelpilot audit log|verify`` and ``mp.verify_audit`` go through :class:`AuditService`, so
they read the log in-process (:class:`~modelpilot.audit.local.LocalAudit`) or on
``modelpilot server`` (``modelpilot.client.HttpAudit``, admin only).
tests/contract/test_audit_alert_service_contract.py runs one suite against every
implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from modelpilot.audit.entities import AuditEntry, AuditVerification

# A page of entries is never unbounded; the export streams instead.
MAX_AUDIT_PAGE = 1000


@dataclass(frozen=True)
class AuditPage:
    """Entries oldest first; ``next_before_id`` fetches the page before (None: no more)."""

    entries: list[AuditEntry]
    next_before_id: int | None


@runtime_checkable
class AuditService(Protocol):
    """What the CLI and the SDK do with the audit log, and nothing more."""

    def list_entries(
        self,
        *,
        subject_prefix: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> AuditPage:
        """The newest ``limit`` (<= MAX_AUDIT_PAGE) matching entries with an id below
        ``before_id`` (all ids when None), oldest first."""

    def export(
        self,
        *,
        subject_prefix: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditEntry]:
        """The newest ``limit`` matching entries (every one when None), oldest first,
        streamed (JSON lines over HTTP)."""

    def verify(self, *, expected_head: str | None = None) -> AuditVerification:
        """Recompute the hash chain; ``expected_head`` (printed by an earlier verify) must
        still be on it."""


__all__ = ["MAX_AUDIT_PAGE", "AuditPage", "AuditService"]
