"""``HttpLoop``: the loop-decision service over HTTP to ``modelpilot server``.

Reads are retried after a dropped connection; an approval is not (its outcome is then
unknown and reported as ``Unavailable``; ``loop show`` tells). The server records the
approval as the caller's token.
"""

from __future__ import annotations

from urllib.parse import quote

from modelpilot.client.transport import HttpService
from modelpilot.loop.decisions import LoopDecision, decision_from_json

_ROOT = "/api/v1/loop/decisions"


class HttpLoop(HttpService):
    """:class:`~modelpilot.loop.protocol.LoopService` on the server."""

    def list_decisions(self, deployment: str, *, limit: int = 20) -> list[LoopDecision]:
        """A deployment's decisions, newest first (viewer)."""
        data = self.call(
            "GET", _ROOT, params={"deployment": deployment, "limit": limit}, idempotent=True
        )
        return [decision_from_json(d) for d in data["decisions"]]

    def get_decision(self, key: str) -> LoopDecision:
        """One decision by id or unique prefix (viewer)."""
        return decision_from_json(self.call("GET", f"{_ROOT}/{quote(key, safe='')}",
                                            idempotent=True))  # fmt: skip

    def approve(self, key: str, *, reject: bool = False, reason: str = "") -> LoopDecision:
        """Approve (or reject) a decision that is awaiting approval (deployer)."""
        body = {"reject": reject, "reason": reason}
        data = self.call("POST", f"{_ROOT}/{quote(key, safe='')}/approval", body,
                         idempotent=False)  # fmt: skip
        return decision_from_json(data)


__all__ = ["HttpLoop"]
