"""Routing snapshots for deployments: which variant answers a request.

A snapshot is immutable; a configuration change builds a new one and swaps the reference,
so in-flight requests finish on the snapshot they started with. Sticky assignment hashes the
routing key with the deployment name (blake2b), so every replica and every restart agrees.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

_BUCKETS = 10_000


@dataclass(frozen=True)
class Route:
    """One variant of a deployment in a snapshot."""

    variant: str
    role: str
    model: str
    version: int
    weight: int


@dataclass(frozen=True)
class RoutingSnapshot:
    """A deployment's variants at one revision."""

    deployment: str
    revision: int
    routes: tuple[Route, ...]
    routing_key: str | None

    @property
    def answering(self) -> tuple[Route, ...]:
        """Variants that answer requests (not shadows), in order."""
        return tuple(r for r in self.routes if r.role != "shadow")

    @property
    def shadows(self) -> tuple[Route, ...]:
        """Variants that receive copies."""
        return tuple(r for r in self.routes if r.role == "shadow")

    def pick(self, key: str | None, rng: random.Random) -> Route:
        """The variant for a request: by the key's hash when given, else at random by weight.

        >>> snap = RoutingSnapshot("d", 1, (Route("a", "stable", "m", 1, 50), Route("b", "challenger", "m", 2, 50)), "user")
        >>> snap.pick("user-42", random.Random(0)) == snap.pick("user-42", random.Random(1))
        True
        """  # noqa: E501
        point = sticky_bucket(self.deployment, key) if key is not None else rng.randrange(_BUCKETS)
        cumulative = 0
        for route in self.answering:
            cumulative += route.weight * _BUCKETS // 100
            if point < cumulative:
                return route
        return self.answering[-1]


def sticky_bucket(deployment: str, key: str) -> int:
    """A stable bucket in [0, 10000) for a routing key within a deployment."""
    digest = hashlib.blake2b(f"{deployment}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS
