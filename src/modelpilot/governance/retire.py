"""Retiring a model version: it stops serving for good, and its records stay.

Release semantics decide what "stops serving" means: a deployment always has a stable
variant, and only a person can say which version takes over, so retiring a version that a
deployment still serves is refused with the commands that move traffic off it. Once retired,
the registry refuses to alias it and release refuses to deploy it; its lineage, evaluations
and audit trail are kept, and the inventory lists it as retired (GOVERN 1.7 evidence).
"""

from __future__ import annotations

from modelpilot.errors import Conflict
from modelpilot.registry import ModelVersion, get_version
from modelpilot.registry.service import retire_version
from modelpilot.release import list_deployments
from modelpilot.store import Store


def retire(store: Store, ref: str, *, reason: str, actor: str | None = None) -> ModelVersion:
    """Retire the version behind ``ref`` (``churn/3``; an alias resolves to its version).

    Conflict while a deployment serves it (any role) or an alias points at it."""
    mv = get_version(store, ref)
    serving = [
        f"{d.name} ({v.role} {v.weight}%)"
        for d in list_deployments(store)
        for v in d.config.variants
        if v.ref == mv.ref
    ]
    if serving:
        first = serving[0].split(" ")[0]
        raise Conflict(
            f"Cannot retire {mv.ref}: deployment(s) {', '.join(serving)} still serve it. Move "
            f"traffic off it first: promote or roll back (modelpilot deploy rollback {first}), "
            f"or start another version as canary and promote it (modelpilot deploy canary "
            f"{first} --model {mv.name}/<version>).",
            field="ref",
        )
    return retire_version(store, mv.name, mv.version, reason=reason, actor=actor)


__all__ = ["retire"]
