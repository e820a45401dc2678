"""Model cards and dataset cards: Markdown, self-contained HTML and JSON, built from records.

Owns how evidence about a version or a dataset is presented; never changes that evidence
except for the person-written card fields.
"""

from __future__ import annotations

from modelpilot.cards.dataset_card import DatasetCard, build_dataset_card
from modelpilot.cards.model_card import (
    EDITABLE_FIELDS,
    Card,
    ModelCard,
    build_model_card,
    card_fields,
    update_card_fields,
)

__all__ = [
    "EDITABLE_FIELDS",
    "Card",
    "DatasetCard",
    "ModelCard",
    "build_dataset_card",
    "build_model_card",
    "card_fields",
    "update_card_fields",
]
