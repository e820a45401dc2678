"""The SDK's remote backend: the service interfaces over HTTP to ``modelpilot server``.

Owns the wire calls, retries and error mapping; never has rules of its own (the server's
services decide). Chosen by ``MODELPILOT_SERVER_URI`` or ``mp.init(server=...)``.
"""

from __future__ import annotations

from modelpilot.client.http import HttpTracking

__all__ = ["HttpTracking"]
