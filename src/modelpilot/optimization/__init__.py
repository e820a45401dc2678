"""Optimised candidates of a registered version: ONNX (and int8 where it applies) and tree
ensembles compiled to a shared library, measured against their source and registered with
lineage to it.

Owns conversion, the fidelity and speed measurements and the candidate table; never decides
which version serves (the gate's ``fidelity`` keys and the usual aliases and canaries do).
"""

from __future__ import annotations

from modelpilot.optimization.service import (
    DEFAULT_RULES,
    TARGETS,
    Candidate,
    OptimizeResult,
    fidelity_rules,
    optimize_version,
    parse_targets,
    stored_fidelity,
)
from modelpilot.optimization.table import CandidateRow, CandidateTable

__all__ = [
    "DEFAULT_RULES",
    "TARGETS",
    "Candidate",
    "CandidateRow",
    "CandidateTable",
    "OptimizeResult",
    "fidelity_rules",
    "optimize_version",
    "parse_targets",
    "stored_fidelity",
]
