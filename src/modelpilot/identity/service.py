"""The token seam: create, list and revoke API tokens, on a store or on ``modelpilot server``.

``modelpilot tokens`` works through :class:`TokenService`: with ``MODELPILOT_SERVER_URI`` set it
calls the server's admin routes (``modelpilot.client.HttpTokens``, an admin token), so tokens
are made where the server checks them; without one it works on the local store
(:class:`LocalTokens`), which is how the first admin token is made before a server runs.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from modelpilot.identity.entities import NewToken, Role, TokenInfo, parse_expires_in
from modelpilot.identity.tokens import create_token, list_tokens, revoke_token
from modelpilot.store import Store


@runtime_checkable
class TokenService(Protocol):
    """What ``modelpilot tokens`` needs, and nothing more."""

    def create_token(self, name: str, role: Role, *, expires_in: str | None = None) -> NewToken:
        """A new token (``expires_in`` such as ``30d``; None: never expires), its secret
        returned once."""

    def list_tokens(self) -> list[TokenInfo]:
        """Every token ever created (revoked and expired ones too), oldest first."""

    def revoke_token(self, name_or_id: str) -> TokenInfo:
        """Revoke the active token with this name (or id)."""


class LocalTokens:
    """Tokens on a store in this process; ``actor`` is recorded on creations and revocations."""

    def __init__(self, store: Store, *, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor

    def create_token(self, name: str, role: Role, *, expires_in: str | None = None) -> NewToken:
        """Create a token; only its salted hash is stored."""
        return create_token(
            self.store,
            name,
            role,
            expires_in_ms=parse_expires_in(expires_in),
            actor=self.actor,
        )

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        return list_tokens(self.store)

    def revoke_token(self, name_or_id: str) -> TokenInfo:
        """Revoke a token by name or id."""
        return revoke_token(self.store, name_or_id, actor=self.actor)


__all__ = ["LocalTokens", "TokenService"]
