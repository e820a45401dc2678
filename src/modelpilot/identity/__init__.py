"""Identities: API tokens (salted hashes in ``api_tokens``), roles and their verification.

Owns creating, listing, revoking and verifying tokens on a store; never HTTP (the control
plane's ``server/deps.py`` and the data plane's ``serving/access.py`` put it in front of
routes). The store-backed names (``tokens``, ``service``) are imported on first use, so the
data plane, which needs the roles and the cache only, does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.identity.cache import DEFAULT_TTL_S, CachedAuthenticator, TokenAuthenticator
from modelpilot.identity.entities import Identity, NewToken, Role, TokenInfo, parse_expires_in
from modelpilot.lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.identity.service import LocalTokens, TokenService
    from modelpilot.identity.tokens import (
        TOKEN_PREFIX,
        Authenticator,
        create_token,
        list_tokens,
        revoke_token,
    )


__all__ = [
    "DEFAULT_TTL_S",
    "TOKEN_PREFIX",
    "Authenticator",
    "CachedAuthenticator",
    "Identity",
    "LocalTokens",
    "NewToken",
    "Role",
    "TokenAuthenticator",
    "TokenInfo",
    "TokenService",
    "create_token",
    "list_tokens",
    "parse_expires_in",
    "revoke_token",
]

__getattr__ = lazy_exports(
    __name__, __all__, ("modelpilot.identity.service", "modelpilot.identity.tokens")
)
