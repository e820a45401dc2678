"""The control catalogue: which framework controls modelpilot's records can evidence.

One data file, ``controls.yaml`` (package data), holds every framework: each control's id,
a paraphrased title, the document and section it comes from, what it applies to and the
kinds of evidence that satisfy it. This module reads and checks it; nothing else does.

>>> catalogue = load_catalogue()
>>> [c.id for c in catalogue.framework("nist-ai-rmf").controls][:2]
['GOVERN 1.6', 'GOVERN 1.7']
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field

from modelpilot.errors import InvalidInput, shown

# Every kind of record the evidence collector produces (modelpilot.governance.evidence).
EvidenceKind = Literal[
    "model_version", "retirement", "intended_use", "limitations", "risk_register",
    "training_data", "data_profile", "evaluation", "fairness", "robustness", "explanations",
    "privacy_risk", "gate_verdict", "deployment_change", "monitoring_policy",
    "monitoring_report", "alert", "rollback", "loop_approval", "privacy_policy", "audit_chain",
]  # fmt: skip
EVIDENCE_KINDS: tuple[str, ...] = get_args(EvidenceKind)
AppliesTo = Literal["model", "production", "workspace"]


class Control(BaseModel):
    """One control or subcategory, as this catalogue maps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    source: str = Field(min_length=1)
    applies_to: AppliesTo
    evidence: tuple[EvidenceKind, ...] = Field(min_length=1)


class Framework(BaseModel):
    """A framework's controls, in the catalogue's order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    document: str
    controls: tuple[Control, ...] = Field(min_length=1)


class Catalogue(BaseModel):
    """Every framework the report knows, by the name ``--framework`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1]
    frameworks: dict[str, Framework]

    def framework(self, name: str) -> Framework:
        """The framework called ``name``; InvalidInput listing the known names otherwise."""
        found = self.frameworks.get(name)
        if found is None:
            raise InvalidInput(
                f"Unknown framework {shown(name)}; known frameworks: "
                f"{', '.join(sorted(self.frameworks))}.",
                field="framework",
            )
        return found


@functools.cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with modelpilot (read once per process)."""
    text = resources.files("modelpilot.governance").joinpath("controls.yaml").read_text("utf-8")
    return Catalogue.model_validate(yaml.safe_load(text))


__all__ = ["EVIDENCE_KINDS", "Catalogue", "Control", "Framework", "load_catalogue"]
