"""What the audit log hands out: entries (as listed and exported) and a chain verification.

Plain records with their JSON forms, so the local service, the server and the HTTP client
(which never opens a store) share them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Problem = Literal["edited", "deleted", "reordered", "inserted", "truncated"]


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

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the server's answer to a verify)."""
        return {**asdict(self), "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditVerification:
        """The verification :meth:`to_dict` wrote.

        >>> done = AuditVerification(True, 3, 0, "a" * 64)
        >>> AuditVerification.from_dict(done.to_dict()) == done
        True
        """
        fields = {k: v for k, v in data.items() if k != "message"}
        return cls(**fields)


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEntry:
        """The entry :meth:`to_dict` wrote (``authenticated`` is derived, so not read).

        >>> entry = AuditEntry(1, 0, "alias.set", "model:churn", "local:ana", {}, None, "ab")
        >>> AuditEntry.from_dict(entry.to_dict()) == entry
        True
        """
        return cls(
            int(data["id"]),
            int(data["time_ms"]),
            str(data["kind"]),
            str(data["subject"]),
            str(data["actor"]),
            dict(data["payload"]),
            data["prev_hash"],
            data["entry_hash"],
        )


__all__ = ["AuditEntry", "AuditVerification", "Problem"]
