"""What the dataset service returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DatasetVersion:
    """One version of a named dataset. ``digest`` is the content hash; ``version`` its prefix."""

    name: str
    digest: str
    created_ms: int
    storage: str
    location: str
    num_rows: int
    schema: list[dict[str, Any]]
    profile: dict[str, Any]
    source: str | None

    @property
    def version(self) -> str:
        """The short content hash people read and type (12 hex characters)."""
        return self.digest[:12]

    @property
    def ref(self) -> str:
        """``name@version``, the form the CLI and SDK accept."""
        return f"{self.name}@{self.version}"
