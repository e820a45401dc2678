"""A model's risk register: what it is for, what it must not be used for, who it affects,
and each risk with its likelihood, impact, mitigation and owner.

Written by a person as YAML (``modelpilot models risk edit churn --file risk.yaml``) and
checked here once, with the file's line in every error. Each edit is a new revision: a
``risk_register`` record on the model's newest version at the time (append-only, with its
audit event), so the model card, rebuilt from the records, always shows the newest one.

>>> text = "intended_use: rank customers for a retention call\\nrisks: []\\n"
>>> parse_risk_register(text).intended_use
'rank customers for a retention call'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelpilot.errors import InvalidInput, NotFound
from modelpilot.evaluation.policy import explain_validation
from modelpilot.loop.policy import yaml_document
from modelpilot.registry import get_version, list_versions
from modelpilot.registry.records import add_record, model_records
from modelpilot.store import Store

KIND = "risk_register"
Level = Literal["low", "medium", "high"]
_Text = Field(min_length=1, max_length=4000)


class Risk(BaseModel):
    """One risk: what could go wrong, how likely and how bad, what is done, who owns it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    risk: str = _Text
    likelihood: Level
    impact: Level
    mitigation: str = _Text
    owner: str = Field(min_length=1, max_length=256)


class RiskRegister(BaseModel):
    """The register as a person writes it (docs/governance.md, "The risk register")."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    intended_use: str = _Text
    out_of_scope_uses: list[str] = Field(default_factory=list)
    affected_groups: list[str] = Field(default_factory=list)
    risks: list[Risk] = Field(default_factory=list)


@dataclass(frozen=True)
class RegisterRevision:
    """One stored revision of a model's register."""

    model: str
    revision: int
    version: int  # the model version that was newest when it was written
    created_ms: int
    actor: str
    register: RiskRegister
    record_id: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``models risk show --json``, the report, the card)."""
        return {
            "model": self.model,
            "revision": self.revision,
            "written_on_version": self.version,
            "created_ms": self.created_ms,
            "actor": self.actor,
            "record_id": self.record_id,
            **self.register.model_dump(mode="json"),
        }


def load_risk_register(path: str | Path) -> RiskRegister:
    """Read and check a register file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(
            f"No risk register file at {file}. Pass a YAML file (see docs/governance.md).",
            field="file",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read risk register {file}: {exc}.", field="file") from exc
    return parse_risk_register(text, source=str(file))


def parse_risk_register(text: str, *, source: str = "<risk register>") -> RiskRegister:
    """Check a register given as YAML text; errors say ``source:line: key: what is wrong``."""
    needs = "intended_use, out_of_scope_uses, affected_groups and risks"
    root, data = yaml_document(text, source, what="risk register", needs=needs)
    try:
        return RiskRegister.model_validate(data)
    except ValidationError as exc:
        line, path, detail = explain_validation(exc, root, RiskRegister)
        raise InvalidInput(f"{source}:{line}: {path}: {detail}", field=path) from None


def save_risk_register(
    store: Store, name: str, register: RiskRegister, *, actor: str | None = None
) -> RegisterRevision:
    """Store ``register`` as the next revision of model ``name``'s register (audited)."""
    newest = get_version(store, name)  # NotFound names the registered models
    add_record(store, newest.ref, KIND, register.model_dump(mode="json"), actor=actor)
    found = current_risk_register(store, name)
    assert found is not None  # just written
    return found


def register_history(store: Store, name: str) -> list[RegisterRevision]:
    """Every revision of a model's register, newest first."""
    records = model_records(store, name, KIND)
    total = len(records)
    return [
        RegisterRevision(
            model=name,
            revision=total - i,
            version=r.version,
            created_ms=r.created_ms,
            actor=r.actor,
            register=RiskRegister.model_validate(r.payload),
            record_id=r.id,
        )
        for i, r in enumerate(records)
    ]


def current_risk_register(store: Store, name: str) -> RegisterRevision | None:
    """The newest revision of a model's register, or None when none was written."""
    history = register_history(store, name)
    return history[0] if history else None


def require_risk_register(store: Store, name: str) -> RegisterRevision:
    """The newest revision; NotFound (saying how to write one) when there is none."""
    list_versions(store, name)  # NotFound names the registered models
    found = current_risk_register(store, name)
    if found is None:
        raise NotFound(
            f"Model {name!r} has no risk register yet. Write one with: modelpilot models risk "
            f"edit {name} --file risk.yaml (see docs/governance.md).",
            field="model",
        )
    return found


__all__ = [
    "KIND",
    "RegisterRevision",
    "Risk",
    "RiskRegister",
    "current_risk_register",
    "load_risk_register",
    "parse_risk_register",
    "register_history",
    "require_risk_register",
    "save_risk_register",
]
