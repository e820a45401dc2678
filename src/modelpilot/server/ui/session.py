"""Dashboard sessions and CSRF tokens.

Logging in with a token sets a cookie that names the token's public id, an expiry and a
random nonce, signed with HMAC-SHA256 under a secret of this server (``home/dashboard-secret``,
created on first start, mode 0600). The token's secret never goes into the cookie: each
request re-reads the token's row, so revoking the token ends its sessions at once.

Every form carries a CSRF token, the HMAC of the session's nonce; a POST whose token does not
match is refused (403). A visitor who has not logged in gets an anonymous session (no token
id) so the login form itself carries a CSRF token. Requests with ``Authorization: Bearer``
(scripts, tests) need no cookie and no CSRF token: a browser never adds that header to a
forged cross-site request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelpilot.clock import now_ms

COOKIE = "mp_session"
SESSION_S = 12 * 3600
SECRET_FILE = "dashboard-secret"


@dataclass(frozen=True)
class Session:
    """What the cookie says: the token that logged in (None: not logged in), a nonce that the
    CSRF token derives from, and when it ends."""

    token_id: str | None
    nonce: str
    expires_ms: int

    @classmethod
    def new(cls, token_id: str | None) -> Session:
        """A fresh session (a new nonce: logging in never keeps the anonymous one's)."""
        return cls(token_id, secrets.token_urlsafe(16), now_ms() + SESSION_S * 1000)


class SessionSigner:
    """Signs and checks session cookies and CSRF tokens with one server secret."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def encode(self, session: Session) -> str:
        """The cookie value: base64 JSON and its signature."""
        payload = base64.urlsafe_b64encode(
            json.dumps([session.token_id, session.nonce, session.expires_ms]).encode()
        ).decode()
        return f"{payload}.{self._sign(payload)}"

    def decode(self, value: str | None) -> Session | None:
        """The session in a cookie; None when absent, tampered with or expired."""
        if not value or "." not in value:
            return None
        payload, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            token_id, nonce, expires_ms = json.loads(base64.urlsafe_b64decode(payload))
        except (ValueError, TypeError):
            return None
        if not isinstance(expires_ms, int) or expires_ms <= now_ms():
            return None
        return Session(token_id, str(nonce), expires_ms)

    def csrf(self, session: Session) -> str:
        """The CSRF token every form of this session carries."""
        return self._sign(f"csrf:{session.nonce}")

    def csrf_matches(self, session: Session, token: str | None) -> bool:
        """Whether a posted CSRF token belongs to this session."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def _sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()


def load_secret(home: Path | None) -> bytes:
    """This server's signing secret, kept in ``home`` (created once, readable by its owner
    only); a random one per process without a home (sessions then end with the process)."""
    if home is None:
        return secrets.token_bytes(32)
    path = home / SECRET_FILE
    home.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # written whole to a temp file, then linked into place: a second server starting at
        # the same moment reads either no file or the complete one, and link() never replaces
        fd, tmp = tempfile.mkstemp(dir=home, prefix=".dashboard-secret-")
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_bytes(32).hex())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return bytes.fromhex(path.read_text().strip())
