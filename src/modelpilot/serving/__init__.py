"""The data plane: Open Inference Protocol v2 and plain JSON over HTTP, adaptive batching,
request validation, Prometheus metrics, the prediction log, batch scoring.

Owns answering prediction requests fast and correctly; never imports ``modelpilot.server``
and never writes to the metadata store on the hot path (it only reads deployment revisions).
"""

from __future__ import annotations

from modelpilot.serving.app import DataPlane
from modelpilot.serving.settings import ServingSettings

__all__ = ["DataPlane", "ServingSettings"]
