"""The model registry: registered models, numbered versions, aliases, events and lineage.

Owns which versions exist and what their aliases point at; never loads weights itself (it
asks ``models``) and never decides deployments. The store-backed operations (``service``) are
imported on first use, so the data plane, which reads the entities only, does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.lazy import lazy_exports
from modelpilot.registry.entities import Event, ModelVersion, RegisteredModel
from modelpilot.registry.refs import ModelRef, parse_ref

if TYPE_CHECKING:
    from modelpilot.registry.service import (
        delete_alias,
        delete_version,
        get_version,
        list_models,
        list_versions,
        model_events,
        register_version,
        set_alias,
    )


__all__ = [
    "Event",
    "ModelRef",
    "ModelVersion",
    "RegisteredModel",
    "delete_alias",
    "delete_version",
    "get_version",
    "list_models",
    "list_versions",
    "model_events",
    "parse_ref",
    "register_version",
    "set_alias",
]

__getattr__ = lazy_exports(__name__, __all__, ("modelpilot.registry.service",))
