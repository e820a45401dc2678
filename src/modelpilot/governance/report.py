"""The governance report: each control of a framework with the records that evidence it and
the gaps where none does.

Per control and model the verdict is one of three: *evidenced* (a record of a kind the
catalogue names exists on the model's assessed versions), a *gap* (none does), or *not
applicable* (a production control on a model no deployment serves, or any control but
decommissioning on a model whose versions are all retired). A control is a gap when any
model in scope has a gap, or when nothing at all evidences it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from modelpilot.audit.entities import AuditVerification
from modelpilot.clock import now_ms
from modelpilot.governance.controls import Control, load_catalogue
from modelpilot.governance.evidence import (
    Evidence,
    audit_evidence,
    model_evidence,
    shared_records,
)
from modelpilot.governance.inventory import ModelEntry, build_inventory
from modelpilot.store import Store

Status = Literal["evidenced", "gap", "not_applicable"]
_ABOUT_DECOMMISSIONING = {"retirement", "model_version"}

# What is missing, per evidence kind (the first kind of a control names its gap), and how a
# person fills it in.
_MISSING = {
    "model_version": "no registered version (log one with mp.log_model)",
    "retirement": "no version was ever retired (modelpilot models retire NAME/VERSION --reason …)",
    "intended_use": "no intended use written (mp.update_model_card(ref, intended_use=…) or "
    "the risk register)",
    "limitations": "no limitations written (mp.update_model_card(ref, limitations=…))",
    "risk_register": "no risk register (modelpilot models risk edit NAME --file risk.yaml)",
    "training_data": "no dataset versions linked (log_model(..., datasets=[…]))",
    "data_profile": "no profiled dataset linked (mp.log_dataset)",
    "evaluation": "no evaluation recorded (mp.evaluate or modelpilot evaluate)",
    "fairness": "no fairness evaluation (mp.evaluate(..., sensitive=[…]))",
    "robustness": "no robustness evaluation (mp.evaluate with robustness=True)",
    "explanations": "no explanations recorded (mp.evaluate with explain=True)",
    "privacy_policy": "no prediction-log policy for personal data (modelpilot logs policy set)",
    "gate_verdict": "no promotion gate verdict (modelpilot gate)",
    "deployment_change": "no deployment record",
    "monitoring_policy": "no monitoring policy (a monitoring: section in modelpilot deploy "
    "policy set)",
    "rollback": "no rollback or incident record",
    "audit_chain": "no audit entries about it",
}


@dataclass(frozen=True)
class Finding:
    """The verdict of one control for one model (``model`` None: the whole workspace)."""

    model: str | None
    status: Status
    message: str = ""
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": self.model,
            "status": self.status,
            "message": self.message,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class ControlResult:
    """A control with its findings."""

    control: Control
    findings: tuple[Finding, ...]

    @property
    def status(self) -> Status:
        """``gap`` if any finding is one, else ``evidenced`` if any is, else not applicable."""
        statuses = {f.status for f in self.findings}
        if "gap" in statuses:
            return "gap"
        return "evidenced" if "evidenced" in statuses else "not_applicable"

    @property
    def gaps(self) -> list[Finding]:
        """The findings that are gaps."""
        return [f for f in self.findings if f.status == "gap"]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        c = self.control
        return {
            "id": c.id,
            "title": c.title,
            "source": c.source,
            "applies_to": c.applies_to,
            "evidence_kinds": list(c.evidence),
            "status": self.status,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class GovernanceReport:
    """A framework's controls assessed on a workspace's records."""

    framework: str
    title: str
    document: str
    model: str | None
    generated_ms: int
    inventory: tuple[ModelEntry, ...]
    controls: tuple[ControlResult, ...]
    audit: AuditVerification

    @property
    def gaps(self) -> list[tuple[ControlResult, Finding]]:
        """Every gap, control by control."""
        return [(c, f) for c in self.controls for f in c.gaps]

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable report (``-o report.json``)."""
        return {
            "schema_version": 1,
            "framework": self.framework,
            "title": self.title,
            "document": self.document,
            "model": self.model,
            "generated_ms": self.generated_ms,
            "summary": {
                "controls": len(self.controls),
                "evidenced": sum(c.status == "evidenced" for c in self.controls),
                "gaps": sum(c.status == "gap" for c in self.controls),
                "not_applicable": sum(c.status == "not_applicable" for c in self.controls),
            },
            "audit_chain": self.audit.to_dict(),
            "inventory": [e.to_dict() for e in self.inventory],
            "controls": [c.to_dict() for c in self.controls],
        }


def build_report(store: Store, framework: str, *, model: str | None = None) -> GovernanceReport:
    """Assess ``framework``'s controls on the records of ``store`` (of one model if given).

    InvalidInput names the known frameworks when ``framework`` is not one of them."""
    spec = load_catalogue().framework(framework)
    inventory = build_inventory(store, model)
    shared = shared_records(store)
    evidence = {e.name: model_evidence(store, e, shared) for e in inventory}
    audit, audit_found = audit_evidence(store, inventory)
    results = []
    for control in spec.controls:
        if control.applies_to == "workspace":
            found = [x for e in evidence.values() for x in e] + audit_found
            findings: tuple[Finding, ...] = (_workspace_finding(control, found, audit),)
        else:
            findings = tuple(_model_finding(control, e, evidence[e.name]) for e in inventory)
            if not findings:
                findings = (Finding(None, "gap", "no registered model in this workspace"),)
        results.append(ControlResult(control, findings))
    return GovernanceReport(
        framework,
        spec.title,
        spec.document,
        model,
        now_ms(),
        tuple(inventory),
        tuple(results),
        audit,
    )


def _workspace_finding(
    control: Control, found: list[Evidence], audit: AuditVerification
) -> Finding:
    matching = tuple(x for x in found if x.kind in control.evidence)
    if matching:
        return Finding(None, "evidenced", evidence=matching)
    if "audit_chain" in control.evidence and not audit.ok:
        return Finding(None, "gap", f"the audit chain does not verify: {audit.message}")
    return Finding(None, "gap", _MISSING.get(control.evidence[0], "no evidence"))


def _model_finding(control: Control, entry: ModelEntry, found: list[Evidence]) -> Finding:
    if not entry.versions:
        return Finding(entry.name, "gap", entry.note or f"model {entry.name!r} has no records")
    if entry.is_retired and not _ABOUT_DECOMMISSIONING & set(control.evidence):
        return Finding(entry.name, "not_applicable", "every version is retired")
    if control.applies_to == "production" and not entry.in_production:
        return Finding(entry.name, "not_applicable", "no deployment serves it")
    matching = tuple(x for x in found if x.kind in control.evidence)
    if matching:
        return Finding(entry.name, "evidenced", evidence=matching)
    refs = ", ".join(v.ref for v in entry.assessed)
    where = f" serves in {', '.join(entry.deployments)}" if entry.in_production else ""
    missing = _MISSING.get(control.evidence[0], "no evidence")
    return Finding(entry.name, "gap", f"{refs}{where} with {missing}")


__all__ = ["ControlResult", "Finding", "GovernanceReport", "build_report"]
