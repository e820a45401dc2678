"""The HTTP plumbing every client service shares: retries, error mapping, one connection pool.

A request is retried with exponential backoff (up to ``retry_for_s``) when the server cannot
be reached or answers 503 (restarting, store briefly down). After a dropped connection it is
repeated only when ``idempotent`` (repeating it cannot double anything); otherwise the caller
gets ``Unavailable`` saying the outcome is unknown. Error bodies
(``{"error": {"type", "message", "field"}}``) become the project's own exception classes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from modelpilot import errors
from modelpilot.errors import ModelpilotError, Unavailable

NOT_DELIVERED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
DROPPED = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout)
_ERROR_TYPES: dict[str, type[ModelpilotError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, ModelpilotError)
}


def send_with_retries(
    send: Callable[[], httpx.Response],
    *,
    base_url: str,
    what: str,
    idempotent: bool,
    retry_for_s: float,
) -> httpx.Response:
    """Call ``send`` until it gets an answer other than 503, or the deadline passes.

    ``what`` names the request (``PUT /api/v1/...``) in the errors.
    """
    deadline = time.monotonic() + retry_for_s
    delay_s = 0.05
    while True:
        try:
            reply = send()
        except NOT_DELIVERED + DROPPED as exc:
            if isinstance(exc, DROPPED) and not idempotent:
                raise Unavailable(
                    f"The connection to modelpilot server at {base_url} dropped during {what} "
                    f"({type(exc).__name__}); whether it was applied is unknown, so it is not "
                    "repeated automatically."
                ) from exc
            if time.monotonic() + delay_s > deadline:
                raise unreachable(base_url, what, retry_for_s, type(exc).__name__) from exc
        else:
            if reply.status_code != 503 or time.monotonic() + delay_s > deadline:
                return reply
            reply.close()
        time.sleep(delay_s)  # backoff between retries of an unreachable server
        delay_s = min(delay_s * 2, 2.0)


def unreachable(base_url: str, what: str, retry_for_s: float, why: str) -> Unavailable:
    """The error for a server that did not answer in time."""
    return Unavailable(
        f"modelpilot server at {base_url} did not answer {what} within {retry_for_s:g} s "
        f"({why}). Check that it is running and that MODELPILOT_SERVER_URI is right."
    )


def decode_reply(reply: httpx.Response, base_url: str) -> Any:
    """The JSON of a successful reply; the project's error for an error body."""
    try:
        data = reply.json() if reply.content else None
    except ValueError:
        data = None
    if reply.is_success:
        return data
    raise error_from_reply(reply, data, base_url)


def error_from_reply(reply: httpx.Response, data: Any, base_url: str) -> ModelpilotError:
    """The exception an error reply stands for (``Unavailable`` when it is not ours)."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return Unavailable(
            f"modelpilot server at {base_url} answered {reply.status_code} without an error body "
            f"({reply.text[:80]!r}); is MODELPILOT_SERVER_URI a modelpilot server?"
        )
    cls = _ERROR_TYPES.get(str(error.get("type")), ModelpilotError)
    return cls(str(error.get("message")), field=error.get("field"))


class HttpService:
    """Base of the HTTP services: one pooled ``httpx.Client`` carrying the bearer token."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retry_for_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_for_s = retry_for_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str | int] | None = None,
        idempotent: bool,
    ) -> Any:
        """Send one JSON request (retrying what is safe) and return the decoded answer."""
        reply = self.send(
            lambda: self.http.request(method, path, json=body, params=params),
            f"{method} {path}",
            idempotent=idempotent,
        )
        return decode_reply(reply, self.base_url)

    def send(
        self, request: Callable[[], httpx.Response], what: str, *, idempotent: bool
    ) -> httpx.Response:
        """``request()`` with this service's retry policy."""
        return send_with_retries(
            request,
            base_url=self.base_url,
            what=what,
            idempotent=idempotent,
            retry_for_s=self.retry_for_s,
        )


__all__ = ["HttpService", "decode_reply", "error_from_reply", "send_with_retries", "unreachable"]
