"""``HttpCards``: model and dataset cards built by ``modelpilot server`` on its store.

The server assembles a card's JSON from its records with the same code as in-process; the
Markdown and HTML are rendered here from that JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from modelpilot.cards import DatasetCard, ModelCard
from modelpilot.client.registry import version_path
from modelpilot.client.transport import HttpService


class HttpCards(HttpService):
    """:class:`~modelpilot.cards.protocol.CardService` on ``modelpilot server``."""

    def model_card(self, ref: str) -> ModelCard:
        """The card of a version (viewer)."""
        return ModelCard(self.call("GET", f"{version_path(self, ref)}/card", idempotent=True))

    def update_card_fields(self, ref: str, fields: Mapping[str, str]) -> dict[str, str]:
        """Store person-written fields (editor; not repeated after a dropped connection)."""
        path = f"{version_path(self, ref)}/card/fields"
        data = self.call("POST", path, {"fields": dict(fields)}, idempotent=False)
        return dict(data["fields"])

    def dataset_card(self, ref: str) -> DatasetCard:
        """The card of a dataset version (viewer)."""
        name, _, version = ref.partition("@")
        params = {"version": version} if version else None
        path = f"/api/v1/datasets/{quote(name, safe='')}/card"
        return DatasetCard(self.call("GET", path, params=params, idempotent=True))


__all__ = ["HttpCards"]
