"""``HttpTokens``: API tokens managed through ``modelpilot server``'s admin routes.

``GET/POST /api/v1/tokens`` and ``DELETE /api/v1/tokens/{name}`` need an admin token; a lower
role gets the server's 403 (``Forbidden``, naming the role needed). Creating and revoking are
not repeated after a dropped connection (a repeated create would fail on the name, a repeated
revoke on the then-revoked token), so the caller hears that the outcome is unknown.
"""

from __future__ import annotations

from urllib.parse import quote

from modelpilot.client.transport import HttpService
from modelpilot.identity.entities import NewToken, Role, TokenInfo

_ROOT = "/api/v1/tokens"


class HttpTokens(HttpService):
    """:class:`~modelpilot.identity.service.TokenService` on ``modelpilot server`` (admin)."""

    def create_token(self, name: str, role: Role, *, expires_in: str | None = None) -> NewToken:
        """Create a token on the server; its secret is in this answer only."""
        body = {"name": name, "role": role.label, "expires_in": expires_in}
        data = self.call("POST", _ROOT, body, idempotent=False)
        return NewToken(TokenInfo.from_json(data), str(data["token"]))

    def list_tokens(self) -> list[TokenInfo]:
        """Every token the server knows, oldest first (never a secret)."""
        data = self.call("GET", _ROOT, idempotent=True)
        return [TokenInfo.from_json(t) for t in data["tokens"]]

    def revoke_token(self, name_or_id: str) -> TokenInfo:
        """Revoke a token by name or id; the server refuses it from the next request on."""
        path = f"{_ROOT}/{quote(name_or_id, safe='')}"
        return TokenInfo.from_json(self.call("DELETE", path, idempotent=False))


__all__ = ["HttpTokens"]
