"""Identities: API tokens (salted hashes in ``api_tokens``), roles and their verification.

Owns creating, listing, revoking and verifying tokens on a store; never HTTP (the control
plane's ``server/deps.py`` and the data plane's ``serving/access.py`` put it in front of
routes).
"""

from __future__ import annotations

from modelpilot.identity.cache import DEFAULT_TTL_S, CachedAuthenticator, TokenAuthenticator
from modelpilot.identity.service import LocalTokens, TokenService
from modelpilot.identity.tokens import (
    TOKEN_PREFIX,
    Authenticator,
    Identity,
    NewToken,
    Role,
    TokenInfo,
    create_token,
    list_tokens,
    parse_expires_in,
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
