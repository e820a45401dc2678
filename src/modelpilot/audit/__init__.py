"""The audit log, read: list and export entries, verify the hash chain.

Owns reading the tamper-evident log that every change appends to (sealing each row as it is
written is :mod:`modelpilot.store.audit`'s); never writes an entry itself.
"""

from __future__ import annotations

from modelpilot.audit.chain import iter_entries, list_entries, verify_chain
from modelpilot.audit.entities import AuditEntry, AuditVerification
from modelpilot.audit.local import LocalAudit
from modelpilot.audit.protocol import MAX_AUDIT_PAGE, AuditPage, AuditService

__all__ = [
    "MAX_AUDIT_PAGE",
    "AuditEntry",
    "AuditPage",
    "AuditService",
    "AuditVerification",
    "LocalAudit",
    "iter_entries",
    "list_entries",
    "verify_chain",
]
