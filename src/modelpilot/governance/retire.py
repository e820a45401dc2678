"""Retiring a model version: it stops serving for good, and its records stay.

Release semantics decide what "stops serving" means. Where the version is a candidate
(canary, A/B challenger or shadow), retiring rolls that deployment back to its last stable
configuration, as a person would, with the retirement's reason in the deployment's history.
A deployment always has a stable variant and only a person can say which version takes
over, so retiring a version that a deployment serves as stable (or that an alias points at)
is refused, with the commands that move traffic off it, before anything changes. Once
retired, the registry refuses to alias it and release refuses to deploy it; its lineage,
evaluations and audit trail are kept, and the inventory lists it as retired (GOVERN 1.7).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelpilot.errors import Conflict
from modelpilot.registry import ModelVersion, get_version
from modelpilot.registry.service import check_retirable, retire_version
from modelpilot.release import list_deployments, rollback
from modelpilot.store import Store


@dataclass(frozen=True)
class Retirement:
    """The retired version and the deployments rolled back so that it no longer serves."""

    version: ModelVersion
    rolled_back: tuple[str, ...]  # "churn-prod (canary 10%)"


def retire(store: Store, ref: str, *, reason: str, actor: str | None = None) -> Retirement:
    """Retire the version behind ``ref`` (``churn/3``; an alias resolves to its version).

    Deployments that try it as a candidate are rolled back first. Conflict, with nothing
    changed, while a deployment serves it as stable or an alias points at it."""
    mv = get_version(store, ref)
    uses = [
        (d.name, v) for d in list_deployments(store) for v in d.config.variants if v.ref == mv.ref
    ]
    stable = [f"{name} (stable {v.weight}%)" for name, v in uses if v.role == "stable"]
    if stable:
        first = stable[0].split(" ")[0]
        raise Conflict(
            f"Cannot retire {mv.ref}: deployment(s) {', '.join(stable)} serve it as stable. "
            f"Move traffic off it first: start another version as canary and promote it "
            f"(modelpilot deploy canary {first} --model {mv.name}/<version>, then modelpilot "
            f"deploy promote {first}), or roll back to an earlier stable configuration.",
            field="ref",
        )
    check_retirable(store, mv.name, mv.version, reason=reason)  # before any rollback
    rolled_back: list[str] = []
    for name in dict.fromkeys(name for name, _ in uses):
        rollback(store, name, actor=actor, reason=f"retiring {mv.ref}: {reason}")
        rolled_back += [f"{n} ({v.role} {v.weight}%)" for n, v in uses if n == name]
    retired = retire_version(store, mv.name, mv.version, reason=reason, actor=actor)
    return Retirement(retired, tuple(rolled_back))


__all__ = ["Retirement", "retire"]
