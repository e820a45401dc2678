"""The control plane's token code, which lives in :mod:`modelpilot.identity` (below both
planes, so the model server verifies tokens with the same code); re-exported here."""

from __future__ import annotations

from modelpilot.identity.entities import Identity, NewToken, Role, TokenInfo, parse_expires_in
from modelpilot.identity.tokens import (
    TOKEN_PREFIX,
    Authenticator,
    create_token,
    list_tokens,
    revoke_token,
)

__all__ = [
    "TOKEN_PREFIX",
    "Authenticator",
    "Identity",
    "NewToken",
    "Role",
    "TokenInfo",
    "create_token",
    "list_tokens",
    "parse_expires_in",
    "revoke_token",
]
