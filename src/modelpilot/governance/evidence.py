"""Collecting the evidence: the records modelpilot already keeps, sorted by kind.

Each record becomes an :class:`Evidence` with the kind the control catalogue names
(``evaluation``, ``fairness``, ``rollback``, …), a one-line summary and the command that shows
the record itself. Nothing is written; a kind nobody recorded is simply absent, which the
report turns into a gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.protocol import MAX_ALERT_PAGE
from modelpilot.audit.chain import list_entries, verify_chain
from modelpilot.audit.entities import AuditVerification
from modelpilot.data import get_dataset
from modelpilot.errors import NotFound
from modelpilot.governance.inventory import ModelEntry
from modelpilot.governance.risk import current_risk_register
from modelpilot.loop import latest_loop_policies
from modelpilot.loop.decisions import list_decisions
from modelpilot.predictions.policy_store import list_log_policies
from modelpilot.registry import ModelVersion
from modelpilot.registry.entities import RETIRED_BY_TAG, RETIRED_REASON_TAG, RETIRED_TAG
from modelpilot.registry.records import list_records
from modelpilot.release import history
from modelpilot.store import Store

# Evaluation payload sections (EvaluationResult.to_dict keys) that evidence a kind: the
# opt-in model risks of mp.evaluate (adversarial, membership; SHAP lives in explanations).
_SECTIONS = {
    "fairness": ("fairness",),
    "robustness": ("robustness", "adversarial"),
    "explanations": ("explanations",),
    "privacy_risk": ("membership",),
}


@dataclass(frozen=True)
class Evidence:
    """One record that evidences a control."""

    kind: str
    model: str | None  # None: about the whole workspace (the audit chain)
    subject: str  # what it is about: a version, a deployment, the audit log
    summary: str
    recorded_ms: int | None
    see: str  # the command that shows the record
    record_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "model": self.model,
            "subject": self.subject,
            "summary": self.summary,
            "recorded_ms": self.recorded_ms,
            "see": self.see,
            "record_id": self.record_id,
        }


@dataclass(frozen=True)
class SharedRecords:
    """What every model's evidence shares: read once per report."""

    monitoring: dict[str, str]  # deployment -> how its loop policy monitors it
    log_policies: dict[tuple[str, str], str]  # (scope, name) -> who set it
    alerts: list[Any]


def shared_records(store: Store) -> SharedRecords:
    """The records not tied to one model: loop policies, logging policies, alerts."""
    monitoring = {
        p.deployment: f"loop policy revision {p.revision}: every "
        f"{p.policy.monitoring.every or p.policy.monitoring.window}, "
        f"{len(p.policy.monitoring.rules)} alert rule(s)"
        for p in latest_loop_policies(store)
        if p.policy.monitoring is not None
    }
    policies = {(str(p.scope), p.name): f"set by {p.actor}" for p in list_log_policies(store)}
    alerts = LocalAlerts(store).list_alerts(limit=MAX_ALERT_PAGE)
    return SharedRecords(monitoring, policies, alerts)


def model_evidence(store: Store, entry: ModelEntry, shared: SharedRecords) -> list[Evidence]:
    """Every piece of evidence about one model."""
    found = list(_inventory(entry))
    register = current_risk_register(store, entry.name) if entry.versions else None
    if register is not None:
        found.append(
            Evidence(
                "risk_register",
                entry.name,
                entry.name,
                f"revision {register.revision}: {len(register.register.risks)} risk(s), "
                f"{len(register.register.affected_groups)} affected group(s)",
                register.created_ms,
                f"modelpilot models risk show {entry.name}",
                register.record_id,
            )
        )
        found.append(
            Evidence(
                "intended_use",
                entry.name,
                entry.name,
                f"risk register: {_short(register.register.intended_use)}",
                register.created_ms,
                f"modelpilot models risk show {entry.name}",
                register.record_id,
            )
        )
    for mv in entry.assessed:
        found += _version_records(store, mv)
        found += _datasets(store, mv)
    for deployment in entry.deployments:
        found += _deployment(store, entry, deployment, shared)
    return found


def _inventory(entry: ModelEntry) -> Iterator[Evidence]:
    for v in entry.versions:
        mv = v.version
        where = ", ".join(str(s) for s in v.serving_in)
        yield Evidence(
            "model_version",
            mv.name,
            mv.ref,
            f"{v.status}{f' in {where}' if where else ''}; flavor {mv.flavor}",
            mv.created_ms,
            f"modelpilot models show {mv.ref}",
        )
        if mv.is_retired:
            yield Evidence(
                "retirement",
                mv.name,
                mv.ref,
                f"retired {mv.tags[RETIRED_TAG]} by {mv.tags.get(RETIRED_BY_TAG, '?')}: "
                f"{mv.tags.get(RETIRED_REASON_TAG, '')}",
                None,
                f"modelpilot audit log --subject model:{mv.name}",
            )


def _version_records(store: Store, mv: ModelVersion) -> list[Evidence]:
    found: list[Evidence] = []
    fields: dict[str, str] = {}
    for record in reversed(list_records(store, mv.ref)):  # oldest first
        see = f"modelpilot models card {mv.ref}"
        if record.kind == "card_fields":
            fields.update(record.payload)
        elif record.kind == "evaluation":
            found += _evaluation(mv, record.payload, record.created_ms, record.id, see)
        elif record.kind == "gate":
            verdict = "PASSED" if record.payload.get("passed") else "FAILED"
            policy = record.payload.get("policy_file") or "policy"
            found.append(
                Evidence(
                    "gate_verdict",
                    mv.name,
                    mv.ref,
                    f"{verdict} ({policy})",
                    record.created_ms,
                    see,
                    record.id,
                )
            )
        elif record.kind == "monitoring":
            deployment = record.payload.get("deployment", "?")
            rows = record.payload.get("rows", 0)
            found.append(
                Evidence(
                    "monitoring_report",
                    mv.name,
                    mv.ref,
                    f"monitoring report of {deployment}: {rows} logged rows",
                    record.created_ms,
                    f"modelpilot monitor reports {deployment}",
                    record.id,
                )
            )
    for kind in ("intended_use", "limitations"):
        if fields.get(kind, "").strip():
            found.append(
                Evidence(
                    kind,
                    mv.name,
                    mv.ref,
                    _short(fields[kind]),
                    None,
                    f"modelpilot models card {mv.ref}",
                )
            )
    return found


def _evaluation(
    mv: ModelVersion, payload: dict[str, Any], created_ms: int, record_id: int, see: str
) -> list[Evidence]:
    metrics = payload.get("metrics") or {}
    shown = ", ".join(
        f"{k}={v['value']:.4g}" if isinstance(v, dict) and "value" in v else f"{k}={v}"
        for k, v in list(metrics.items())[:3]
    )
    on = payload.get("dataset") or f"{payload.get('n_rows', '?')} rows"
    found = [
        Evidence(
            "evaluation",
            mv.name,
            mv.ref,
            f"on {on}: {shown or 'no metrics'}",
            created_ms,
            see,
            record_id,
        )
    ]
    for kind, keys in _SECTIONS.items():
        present = [k for k in keys if payload.get(k)]
        if present:
            section = payload[present[0]]
            detail = ", ".join(section) if isinstance(section, dict) else f"{len(section)} item(s)"
            found.append(
                Evidence(
                    kind,
                    mv.name,
                    mv.ref,
                    f"{present[0]} in the evaluation: {detail}",
                    created_ms,
                    see,
                    record_id,
                )
            )
    return found


def _datasets(store: Store, mv: ModelVersion) -> list[Evidence]:
    found = []
    for link in mv.linked_datasets:
        found.append(
            Evidence(
                "training_data",
                mv.name,
                mv.ref,
                f"{link.name}@{link.digest[:12]} ({link.role})",
                None,
                f"modelpilot models show {mv.ref}",
            )
        )
        try:
            version = get_dataset(store, link.ref)
        except NotFound:
            continue
        columns = (version.profile or {}).get("columns") or {}
        if columns:
            found.append(
                Evidence(
                    "data_profile",
                    mv.name,
                    mv.ref,
                    f"{link.name}: {version.num_rows:,} rows, {len(columns)} profiled column(s)",
                    version.created_ms,
                    f"modelpilot datasets card {link.name}@{version.version}",
                )
            )
    return found


def _deployment(
    store: Store, entry: ModelEntry, deployment: str, shared: SharedRecords
) -> list[Evidence]:
    name = entry.name
    found = []
    for revision in history(store, deployment):
        if not any(v.model == name for v in revision.config.variants):
            continue
        kind = "rollback" if revision.action in ("rollback", "auto_rollback") else None
        found.append(
            Evidence(
                kind or "deployment_change",
                name,
                f"{deployment} revision {revision.revision}",
                f"{revision.action} by {revision.actor}: {_short(revision.reason)}",
                revision.created_ms,
                f"modelpilot deploy history {deployment}",
            )
        )
    if deployment in shared.monitoring:
        found.append(
            Evidence(
                "monitoring_policy",
                name,
                deployment,
                shared.monitoring[deployment],
                None,
                f"modelpilot deploy policy show {deployment}",
            )
        )
    for scope, subject in (("deployment", deployment), ("model", name)):
        if (scope, subject) in shared.log_policies:
            found.append(
                Evidence(
                    "privacy_policy",
                    name,
                    f"{scope} {subject}",
                    f"prediction-log policy (PII handling) {shared.log_policies[scope, subject]}",
                    None,
                    f"modelpilot logs policy show --{scope} {subject}",
                )
            )
    for record in shared.alerts:
        if record.alert.subject in (deployment, name):
            found.append(
                Evidence(
                    "alert",
                    name,
                    deployment,
                    _short(record.alert.message),
                    record.alert.time_ms,
                    "modelpilot alerts list",
                    record.id,
                )
            )
    found += _approvals(store, name, deployment)
    return found


def _approvals(store: Store, name: str, deployment: str) -> list[Evidence]:
    found = []
    for decision in list_decisions(store, deployment=deployment, limit=200):
        for step in decision.steps:
            if step.evidence.get("approval"):
                found.append(
                    Evidence(
                        "loop_approval",
                        name,
                        f"decision {decision.short_id}",
                        f"{decision.candidate or '?'}: {_short(step.reason)}",
                        step.at_ms,
                        f"modelpilot loop show {decision.short_id}",
                    )
                )
    return found


def audit_evidence(
    store: Store, entries: list[ModelEntry]
) -> tuple[AuditVerification, list[Evidence]]:
    """Verify the hash chain; evidence when it is intact and holds entries about the models
    in scope (a chain that says nothing about them evidences nothing)."""
    verification = verify_chain(store)
    if not verification.ok:
        return verification, []
    subjects = [f"model:{e.name}" for e in entries]
    subjects += [f"deployment:{d}" for e in entries for d in e.deployments]
    about = sum(bool(list_entries(store, subject_prefix=s, limit=1)) for s in subjects)
    if not about:
        return verification, []
    summary = (
        f"hash chain intact: {verification.entries_checked} entries verified, head "
        f"{verification.head_hash[:16]}"
    )
    return verification, [
        Evidence("audit_chain", None, "audit log", summary, None, "modelpilot audit verify")
    ]


def _short(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = ["Evidence", "SharedRecords", "audit_evidence", "model_evidence", "shared_records"]
