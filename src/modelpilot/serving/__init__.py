"""The data plane: Open Inference Protocol v2 and plain JSON over HTTP, adaptive batching,
request validation, Prometheus metrics, the prediction log, batch scoring.

Owns answering prediction requests fast and correctly; never imports ``modelpilot.server``
and never writes to the metadata store on the hot path (it only reads deployment revisions).
``DataPlane`` and ``ServingSettings`` are imported on first use, so a batch scorer's Ray actor
(``serving.ray_scoring``) does not import the HTTP stack and the prediction log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.serving.app import DataPlane
    from modelpilot.serving.settings import ServingSettings

__all__ = ["DataPlane", "ServingSettings"]

__getattr__ = lazy_exports(
    __name__, __all__, ("modelpilot.serving.settings", "modelpilot.serving.app")
)
