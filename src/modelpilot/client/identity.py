"""``HttpWhoami``: a model server asks the control plane whose token a caller sent.

``GET /api/v1/whoami`` with the caller's own ``Authorization`` header answers its name and
role, or 401 (unknown, wrong, expired, revoked). The data plane wraps this in
:class:`~modelpilot.identity.cache.CachedAuthenticator`, so the control plane is asked once per
token and TTL, not per request.
"""

from __future__ import annotations

from modelpilot.client.transport import HttpService, decode_reply
from modelpilot.errors import Unauthorized, Unavailable
from modelpilot.identity.entities import Identity, Role

_PATH = "/api/v1/whoami"


class HttpWhoami(HttpService):
    """A :class:`~modelpilot.identity.cache.TokenAuthenticator` on ``modelpilot server``."""

    def authenticate(self, header: str | None) -> Identity:
        """The caller's identity as the control plane knows it."""
        if not header or not header.strip():
            raise Unauthorized(
                "This model server requires an API token: send 'Authorization: Bearer <token>'. "
                "Create one with: modelpilot tokens create NAME --role viewer"
            )
        reply = self.send(
            lambda: self.http.get(_PATH, headers={"Authorization": header.strip()}),
            f"GET {_PATH}",
            idempotent=True,
        )
        data = decode_reply(reply, self.base_url)
        try:
            name, role = str(data["name"]), Role.parse(str(data["role"]))
        except (KeyError, TypeError) as exc:
            raise Unavailable(
                f"modelpilot server at {self.base_url} answered {_PATH} without a name and a "
                "role; is it a modelpilot server of this version?"
            ) from exc
        return Identity(name, role, f"token:{name}")


__all__ = ["HttpWhoami"]
