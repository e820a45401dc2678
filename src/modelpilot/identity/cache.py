"""Remembering verified tokens for a short time, for callers on a hot path (the data plane).

A model server checks a token on every request it guards; asking the store (or, following a
remote control plane, ``GET /api/v1/whoami``) each time would put a round trip on the hot
path. :class:`CachedAuthenticator` keeps each positive answer for ``ttl_s`` seconds, keyed by
a SHA-256 digest of the token (the token itself is never kept). Refusals are not cached, so a
new token works at once; a revoked or expired one keeps working for at most ``ttl_s``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

from modelpilot.identity.entities import Identity

DEFAULT_TTL_S = 30.0
_MAX_ENTRIES = 10_000  # distinct valid tokens remembered at once; the oldest go first


class TokenAuthenticator(Protocol):
    """Turns an ``Authorization`` header into an :class:`Identity`, or raises Unauthorized
    (Unavailable when whoever decides cannot be asked)."""

    def authenticate(self, header: str | None) -> Identity:
        """The caller's identity."""


class CachedAuthenticator:
    """A :class:`TokenAuthenticator` that remembers positive answers for ``ttl_s`` seconds.

    >>> from modelpilot.identity.entities import Role
    >>> class Counting:
    ...     calls = 0
    ...     def authenticate(self, header):
    ...         Counting.calls += 1
    ...         return Identity("ci", Role.VIEWER, "token:ci")
    >>> cached = CachedAuthenticator(Counting(), ttl_s=30)
    >>> [cached.authenticate("Bearer mp_x").name for _ in range(3)], Counting.calls
    (['ci', 'ci', 'ci'], 1)
    """

    def __init__(
        self,
        inner: TokenAuthenticator,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.ttl_s = ttl_s
        self.clock = clock
        self._known: dict[str, tuple[Identity, float]] = {}
        self._lock = threading.Lock()

    def cached(self, header: str | None) -> Identity | None:
        """The remembered identity of this header, if still fresh (cheap: no I/O)."""
        if not header:
            return None
        entry = self._known.get(_digest(header))
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    def authenticate(self, header: str | None) -> Identity:
        """The remembered identity, else the inner authenticator's answer (remembered)."""
        known = self.cached(header)
        if known is not None:
            return known
        identity = self.inner.authenticate(header)  # refuses a missing header
        with self._lock:
            if len(self._known) >= _MAX_ENTRIES:
                now = self.clock()
                fresh = {k: v for k, v in self._known.items() if v[1] > now}
                self._known = dict(list(fresh.items())[-_MAX_ENTRIES // 2 :])
            self._known[_digest(header or "")] = (identity, self.clock() + self.ttl_s)
        return identity


def _digest(header: str) -> str:
    return hashlib.sha256(header.strip().encode()).hexdigest()


__all__ = ["DEFAULT_TTL_S", "CachedAuthenticator", "TokenAuthenticator"]
