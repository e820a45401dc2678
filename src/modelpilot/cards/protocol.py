"""The card seam: model and dataset cards, and the person-written fields of a model card.

Cards are built where the records are, from one code path (:func:`build_model_card`,
:func:`build_dataset_card`): in-process on a store (:class:`LocalCards`) or by
``modelpilot server`` on its store, fetched as JSON by ``modelpilot.client.HttpCards``. The
card's Markdown and HTML are rendered on the caller's side from that JSON, so both give the
same pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from modelpilot.artifacts import ArtifactStore
from modelpilot.cards.dataset_card import DatasetCard, build_dataset_card
from modelpilot.cards.model_card import ModelCard, build_model_card, update_card_fields
from modelpilot.store import Store


@runtime_checkable
class CardService(Protocol):
    """What ``mp.model_card``, ``mp.update_model_card`` and ``mp.dataset_card`` need."""

    def model_card(self, ref: str) -> ModelCard:
        """The card of the version behind ``ref``, built from its records now."""

    def update_card_fields(self, ref: str, fields: Mapping[str, str]) -> dict[str, str]:
        """Store person-written fields (``intended_use``, ``limitations``, ...) on a version;
        returns every field as merged (newest value per field)."""

    def dataset_card(self, ref: str) -> DatasetCard:
        """The card of a dataset version (``name@version`` or ``name``)."""


class LocalCards:
    """Cards on a store and an artifact store in this process; ``actor`` signs field edits."""

    def __init__(self, store: Store, artifacts: ArtifactStore, *, actor: str | None = None) -> None:
        self.store = store
        self.artifacts = artifacts
        self.actor = actor

    def model_card(self, ref: str) -> ModelCard:
        """The card of a version."""
        return build_model_card(self.store, self.artifacts, ref)

    def update_card_fields(self, ref: str, fields: Mapping[str, str]) -> dict[str, str]:
        """Store person-written fields; returns the merged fields."""
        return update_card_fields(self.store, ref, dict(fields), actor=self.actor)

    def dataset_card(self, ref: str) -> DatasetCard:
        """The card of a dataset version."""
        return build_dataset_card(self.store, ref)


__all__ = ["CardService", "LocalCards"]
