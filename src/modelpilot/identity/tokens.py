"""API tokens and roles: who may call the control plane or a model server, and as whom
changes are recorded.

A token is ``mp_<id>_<secret>``; it is shown once, and only a salted scrypt hash of it is
stored (``api_tokens``). Verification compares hashes with :func:`hmac.compare_digest`; a
token that verified once is remembered in memory by a fast digest so each request does not pay
scrypt again, but its row (revoked, expired) is read on every request, so revoking takes effect
at once, even when done with ``modelpilot tokens revoke`` on the store directly.

Layer 2 (below ``serving`` and ``server``): the control plane's routes and the data plane's
admin routes verify tokens with the same code.

The roles, identities and token records are in :mod:`modelpilot.identity.entities`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import insert, select, update

from modelpilot.clock import now_ms
from modelpilot.errors import Conflict, NotFound, Unauthorized, shown
from modelpilot.identity.entities import Identity, NewToken, Role, TokenInfo
from modelpilot.store import Store
from modelpilot.store.events import default_actor, record_event
from modelpilot.store.schema import api_tokens
from modelpilot.tracking.validation import check_key

TOKEN_PREFIX = "mp_"
_ID_HEX = 16
_TOUCH_EVERY_MS = 60_000  # last_used_ms is a hint; writing it on every request would serialise
# scrypt cost parameters (RFC 7914 interactive setting): ~30 ms and 16 MiB per check.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def create_token(
    store: Store,
    name: str,
    role: Role,
    *,
    expires_in_ms: int | None = None,
    actor: str | None = None,
) -> NewToken:
    """Create a token; the returned secret is never stored (only its salted hash)."""
    check_key(name, "token")
    token_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    now = now_ms()
    who = actor or default_actor()
    info = TokenInfo(
        token_id, name, role, now, who, now + expires_in_ms if expires_in_ms else None, None, None
    )
    with store.write() as conn:
        rows = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).all()
        if any(_info(r).is_active(now) for r in rows):
            raise Conflict(
                f"An active token named {shown(name)} exists already. Revoke it first "
                f"(modelpilot tokens revoke {name}) or choose another name.",
                field="name",
            )
        conn.execute(
            insert(api_tokens).values(
                id=token_id,
                name=name,
                role=role.label,
                salt=salt,
                token_hash=_hash(secret, salt),
                created_ms=now,
                created_by=who,
                expires_ms=info.expires_ms,
            )
        )
        record_event(
            conn,
            "token.created",
            f"token:{name}",
            who,
            {"id": token_id, "role": role.label, "expires_ms": info.expires_ms},
        )
    return NewToken(info, f"{TOKEN_PREFIX}{token_id}_{secret}")


def list_tokens(store: Store) -> list[TokenInfo]:
    """Every token ever created (revoked and expired ones too), oldest first."""
    with store.read() as conn:
        rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_ms)).all()
    return [_info(r) for r in rows]


def revoke_token(store: Store, name_or_id: str, *, actor: str | None = None) -> TokenInfo:
    """Revoke the active token with this name (or id); it is refused from the next request on."""
    now = now_ms()
    who = actor or default_actor()
    with store.write() as conn:
        rows = [_info(r) for r in conn.execute(select(api_tokens)).all()]
        active = [t for t in rows if t.is_active(now) and name_or_id in (t.name, t.id)]
        if not active:
            names = sorted({t.name for t in rows if t.is_active(now)})
            raise NotFound(
                f"No active token named {shown(name_or_id)}. Active tokens: "
                f"{', '.join(names) if names else 'none'}. See: modelpilot tokens list",
                field="name",
            )
        token = active[0]
        conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(revoked_ms=now))
        record_event(conn, "token.revoked", f"token:{token.name}", who, {"id": token.id})
    return TokenInfo(**{**token.__dict__, "revoked_ms": now})


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity`, or raises Unauthorized."""

    def __init__(self, store: Store, *, record_use: bool = True) -> None:
        self.store = store
        self.record_use = record_use  # write last_used_ms (a model server reads only)
        self._verified: dict[str, str] = {}  # token id -> sha256 of the token that verified
        self._touched: dict[str, int] = {}  # token id -> last last_used_ms written

    def authenticate(self, header: str | None) -> Identity:
        """The caller's identity; wrong, expired and revoked tokens are refused."""
        token_id, secret = _parse_header(header)
        row = self._row(token_id)
        if row is None or not self._matches(token_id, secret, row.salt, row.token_hash):
            raise Unauthorized(
                "The API token is not valid (unknown token or wrong secret). Check "
                "MODELPILOT_TOKEN, or create a token with: modelpilot tokens create NAME --role "
                "viewer"
            )
        return self._active(row)

    def authenticate_session(self, token_id: str) -> Identity:
        """The identity of a dashboard session opened by logging in with token ``token_id``
        (its secret was checked then); refused once the token is revoked or expired."""
        row = self._row(token_id)
        if row is None:
            raise Unauthorized("The session's token no longer exists. Log in again.")
        return self._active(row)

    def _row(self, token_id: str) -> Any:
        with self.store.read() as conn:
            return conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()

    def _active(self, row: Any) -> Identity:
        token_id = row.id
        info = _info(row)
        now = now_ms()
        if info.revoked_ms is not None:
            raise Unauthorized(
                f"API token {info.name!r} was revoked. Ask an admin for a new token "
                "(modelpilot tokens create)."
            )
        if info.expires_ms is not None and info.expires_ms <= now:
            raise Unauthorized(
                f"API token {info.name!r} has expired. Ask an admin for a new token "
                "(modelpilot tokens create ... --expires-in 30d)."
            )
        self._touch(token_id, now)
        return Identity(info.name, info.role, f"token:{info.name}")

    def _matches(self, token_id: str, secret: str, salt: str, stored: str) -> bool:
        fast = hashlib.sha256(f"{token_id}:{secret}".encode()).hexdigest()
        known = self._verified.get(token_id)
        if known is not None and hmac.compare_digest(known, fast):
            return True
        if not hmac.compare_digest(_hash(secret, salt), stored):
            return False
        self._verified[token_id] = fast
        return True

    def _touch(self, token_id: str, now: int) -> None:
        if not self.record_use or now - self._touched.get(token_id, 0) < _TOUCH_EVERY_MS:
            return
        self._touched[token_id] = now
        with self.store.write() as conn:
            conn.execute(
                update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_ms=now)
            )


def token_id_of(token: str) -> str:
    """The public id part of a well-formed token ``mp_<id>_<secret>`` (Unauthorized if it is
    not one); a dashboard session keeps this, never the token."""
    return _parse_header(f"Bearer {token}")[0]


def _parse_header(header: str | None) -> tuple[str, str]:
    if not header:
        raise Unauthorized(
            "This server requires an API token: send 'Authorization: Bearer <token>' (the SDK "
            "reads MODELPILOT_TOKEN). Create one with: modelpilot tokens create NAME --role viewer"
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    well_formed = (
        scheme.lower() == "bearer"
        and token.startswith(TOKEN_PREFIX)
        and len(token) > len(TOKEN_PREFIX) + _ID_HEX + 1
        and token[len(TOKEN_PREFIX) + _ID_HEX] == "_"
    )
    if not well_formed:
        raise Unauthorized(
            "The Authorization header is not 'Bearer mp_…' (a modelpilot API token). Check "
            "MODELPILOT_TOKEN."
        )
    start = len(TOKEN_PREFIX)
    return token[start : start + _ID_HEX], token[start + _ID_HEX + 1 :]


def _hash(secret: str, salt: str) -> str:
    return hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(salt), n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    ).hex()


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role.parse(row.role),
        created_ms=row.created_ms,
        created_by=row.created_by,
        expires_ms=row.expires_ms,
        revoked_ms=row.revoked_ms,
        last_used_ms=row.last_used_ms,
    )
