"""Governance: the evidence modelpilot's records give for AI risk-management frameworks
(NIST AI RMF, ISO/IEC 42001), a risk register per model, and retiring model versions.

Owns the control catalogue (``controls.yaml``), the report built from it, the risk register's
schema and revisions, and the retirement rule; never writes the records it reports on
(registry, evaluation, release, loop and the audit log own those).
"""

from __future__ import annotations

from modelpilot.governance.controls import Catalogue, Control, load_catalogue
from modelpilot.governance.report import GovernanceReport, build_report
from modelpilot.governance.retire import retire
from modelpilot.governance.risk import (
    RegisterRevision,
    RiskRegister,
    current_risk_register,
    load_risk_register,
    parse_risk_register,
    save_risk_register,
)

__all__ = [
    "Catalogue",
    "Control",
    "GovernanceReport",
    "RegisterRevision",
    "RiskRegister",
    "build_report",
    "current_risk_register",
    "load_catalogue",
    "load_risk_register",
    "parse_risk_register",
    "retire",
    "save_risk_register",
]
