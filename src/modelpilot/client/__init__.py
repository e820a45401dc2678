"""The SDK's remote backend: the service interfaces over HTTP to ``modelpilot server``.

Owns the wire calls, retries and error mapping; never has rules of its own (the server's
services decide) and never opens a store. Chosen by ``MODELPILOT_SERVER_URI`` or
``mp.init(server=...)``.
"""

from __future__ import annotations

from modelpilot.client.artifacts import HttpArtifacts, HttpArtifactStore
from modelpilot.client.audit import HttpAlerts, HttpAudit
from modelpilot.client.cards import HttpCards
from modelpilot.client.deployments import HttpDeployments
from modelpilot.client.http import HttpTracking
from modelpilot.client.identity import HttpWhoami
from modelpilot.client.monitoring import HttpMonitoring
from modelpilot.client.policies import HttpLogPolicies
from modelpilot.client.registry import HttpDatasets, HttpRegistry
from modelpilot.client.tokens import HttpTokens

__all__ = [
    "HttpAlerts",
    "HttpArtifactStore",
    "HttpArtifacts",
    "HttpAudit",
    "HttpCards",
    "HttpDatasets",
    "HttpDeployments",
    "HttpLogPolicies",
    "HttpMonitoring",
    "HttpRegistry",
    "HttpTokens",
    "HttpTracking",
    "HttpWhoami",
]
