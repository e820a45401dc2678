"""Who may call a model server: the data plane's admin routes and, optionally, inference.

* Admin routes (``/v2/repository/*``: the model index, load and unload, everything that
  changes what is served) need a token with role deployer or higher, always.
* With ``--require-token`` every other route needs a valid token (viewer or higher), except
  the liveness and readiness probes (``/v2/health/*``), which orchestrators call without one.
* Otherwise inference, metadata, metrics and the probes are open.

A missing, malformed, unknown, expired or revoked token answers 401 (with
``WWW-Authenticate: Bearer``); a valid one with too low a role answers 403; both with the
route's usual JSON error body. Tokens are checked by a
:class:`~modelpilot.identity.cache.CachedAuthenticator` (the local store, or the control
plane's ``/api/v1/whoami``): a known token costs a dict lookup on the event loop, a new one a
check in a worker thread; revocation takes effect within the cache's TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from modelpilot.errors import Forbidden, ModelpilotError
from modelpilot.identity.cache import CachedAuthenticator
from modelpilot.identity.entities import Role
from modelpilot.serving.app import error_body

ADMIN_PREFIXES = ("/v2/repository/",)
OPEN_PREFIXES = ("/v2/health/",)


def required_role(path: str, *, require_token: bool) -> Role | None:
    """The least role a path needs (None: open).

    >>> required_role("/v2/repository/models/churn/load", require_token=False).label
    'deployer'
    >>> required_role("/predict/churn", require_token=False) is None
    True
    >>> required_role("/predict/churn", require_token=True).label
    'viewer'
    >>> required_role("/v2/health/ready", require_token=True) is None
    True
    """
    if path.startswith(ADMIN_PREFIXES):
        return Role.DEPLOYER
    if require_token and not path.startswith(OPEN_PREFIXES):
        return Role.VIEWER
    return None


class TokenGuard:
    """ASGI wrapper checking the caller's token before the data plane sees the request."""

    def __init__(self, app: Any, tokens: CachedAuthenticator, *, require_token: bool) -> None:
        self.app = app
        self.tokens = tokens
        self.require_token = require_token

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """The wrapped app's own coroutine when the route is open, else the checked one.

        A plain function returning what the server awaits, not a coroutine: a request that
        waits for its batch suspends and resumes through every coroutine between it and the
        server, and on the open inference path this level then costs nothing.
        """
        if scope["type"] == "http":
            role = required_role(scope["path"], require_token=self.require_token)
            if role is not None:
                return self._checked(scope, receive, send, role)
        return self.app(scope, receive, send)  # type: ignore[no-any-return]

    async def _checked(self, scope: dict[str, Any], receive: Any, send: Any, role: Role) -> None:
        try:
            await self._check(scope, role)
        except ModelpilotError as exc:
            await _refuse(send, scope["path"], exc)
            return
        await self.app(scope, receive, send)

    async def _check(self, scope: dict[str, Any], role: Role) -> None:
        header = _authorization(scope)
        identity = self.tokens.cached(header)
        if identity is None:  # store or control-plane round trip: off the event loop
            loop = asyncio.get_running_loop()
            identity = await loop.run_in_executor(None, self.tokens.authenticate, header)
        if identity.role < role:
            raise Forbidden(
                f"Token {identity.name!r} has role {identity.role.label}; {scope['method']} "
                f"{scope['path']} needs {role.label} or higher. Ask an admin for a token with "
                f"that role (modelpilot tokens create NAME --role {role.label})."
            )


def _authorization(scope: dict[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            return text
    return None


async def _refuse(send: Any, path: str, error: ModelpilotError) -> None:
    body = error_body(path, error, None)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if error.http_status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
