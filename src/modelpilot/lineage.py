"""Lineage: why a model version exists (moved to :mod:`modelpilot.registry.lineage`, which
the registry service needs; kept here so existing imports keep working)."""

from __future__ import annotations

from modelpilot.registry.lineage import Lineage, lineage

__all__ = ["Lineage", "lineage"]
