"""Who a caller is: roles, identities and the token records the planes exchange, without the
store (:mod:`modelpilot.identity.tokens` keeps the tokens' rows and verifies them).

The data plane imports only these (a model image has no metadata store, and no SQLAlchemy).

>>> Role.parse("editor") > Role.VIEWER
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from modelpilot.clock import parse_duration_s
from modelpilot.errors import InvalidInput, shown


class Role(IntEnum):
    """Ordered roles: each one may do everything the ones below it may."""

    VIEWER = 1  # reads
    EDITOR = 2  # also tracks runs, logs datasets and models
    DEPLOYER = 3  # also sets aliases and changes deployments
    ADMIN = 4  # also manages tokens

    @property
    def label(self) -> str:
        """The lower-case name people type."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """``viewer`` -> Role.VIEWER; InvalidInput listing the roles otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise InvalidInput(
                f"Unknown role {shown(text)}; expected one of {', '.join(r.label for r in cls)}.",
                field="role",
            ) from None


@dataclass(frozen=True)
class Identity:
    """Who is calling: the token's name and role; ``actor`` is what events record."""

    name: str
    role: Role
    actor: str


@dataclass(frozen=True)
class TokenInfo:
    """A stored token without its secret."""

    id: str
    name: str
    role: Role
    created_ms: int
    created_by: str
    expires_ms: int | None
    revoked_ms: int | None
    last_used_ms: int | None

    def is_active(self, now: int) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_ms is None and (self.expires_ms is None or self.expires_ms > now)

    def to_json(self) -> dict[str, Any]:
        """JSON form (no secret, no hash)."""
        return {**self.__dict__, "role": self.role.label}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenInfo:
        """The token :meth:`to_json` wrote (a server's answer)."""

        def stamp(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            role=Role.parse(str(data["role"])),
            created_ms=int(data["created_ms"]),
            created_by=str(data["created_by"]),
            expires_ms=stamp("expires_ms"),
            revoked_ms=stamp("revoked_ms"),
            last_used_ms=stamp("last_used_ms"),
        )


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``token`` is the only time the secret exists outside the caller."""

    info: TokenInfo
    token: str


def parse_expires_in(text: str | None) -> int | None:
    """``30d``, ``12h``, ``1w`` as milliseconds (None: never expires).

    >>> parse_expires_in("2h")
    7200000
    """
    if text is None:
        return None
    seconds = parse_duration_s(text)
    if seconds is None or seconds <= 0:
        raise InvalidInput(
            f"--expires-in must be a duration such as 30m, 12h, 30d or 1w; got {shown(text)}.",
            field="expires_in",
        )
    return int(seconds * 1000)
